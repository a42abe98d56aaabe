--! include lib_breaker.lua
-- A success (or an answer) about one scope: ends a closed scope's streak, counts towards
-- closing a half-open one. A closed scope keeps no state: its hash is deleted.
-- KEYS: index, state, probes.  ARGV: now|'', probe_id, successes_to_close, scope.
-- Answers {state, changed}.
local st = redis.call('HGET', KEYS[2], 'state') or 'closed'
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[3], ARGV[2]) end
if st == 'closed' then
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DEL', KEYS[2]) end
  return {st, ''}
end
if st == 'open' then return {st, ''} end
if redis.call('HINCRBY', KEYS[2], 'successes', 1) < tonumber(ARGV[3]) then return {st, ''} end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HDEL', KEYS[1], ARGV[4])
return {'closed', 'closed'}
