-- Takes the pump lease when free, or renews it for its owner (who would
-- otherwise wait for its own lease to expire before the campaign's next step).
-- KEYS: pump lease.  ARGV: owner, ttl_ms.  Answers 1 when held, else 0.

local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
