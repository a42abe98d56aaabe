--! include lib_breaker.lua
-- A failure about one scope: count it towards the streak, or open the scope at once.
-- KEYS: index, state, probes.  ARGV: now|'', probe_id, threshold, base_ms, max_ms,
-- trip 0|1, reason, scope.  Answers {state, changed, open_for_ms, failures}.
local now = now_ms(ARGV[1])
local st = redis.call('HGET', KEYS[2], 'state') or 'closed'
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[3], ARGV[2]) end
-- Already open: a late failure of a send admitted earlier changes nothing.
if st == 'open' then return {st, '', 0, 0} end
local failures = redis.call('HINCRBY', KEYS[2], 'failures', 1)
if st == 'closed' and ARGV[6] == '0' and failures < tonumber(ARGV[3]) then
  return {st, '', 0, failures}
end
local opens = redis.call('HINCRBY', KEYS[2], 'opens', 1)
local open_for = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ (opens - 1))
redis.call('HSET', KEYS[2], 'state', 'open', 'reason', ARGV[7], 'since', now,
  'open_until', now + open_for, 'successes', 0)
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[8], now + open_for)
return {'open', 'opened', open_for, failures}
