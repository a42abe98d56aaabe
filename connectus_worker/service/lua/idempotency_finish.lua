-- Store the answer (if any) and release the marker only if it is still ours.
-- KEYS: answer, lock.  ARGV: lock token, answer (JSON), answer ttl (s; 0 = don't store)

if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
