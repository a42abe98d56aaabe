-- The safety net: a job still 'sending' after its lease, with no message left
-- to bring it back (its worker died, or lost Redis and gave up), is moved to
-- 'unknown' for the reconciler.
-- KEYS: leases zset, unknown zset, in-flight msgs, unknown msgs.
-- ARGV: now_ms, limit, key prefix
-- Answers how many were moved.
--! include lib_expire.lua

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local swept = 0
for _, id in ipairs(ids) do
  local job = ARGV[3] .. ':job:' .. id
  local st = redis.call('HGET', job, 'state')
  local lease_until = tonumber(redis.call('HGET', job, 'lease_until') or '0')
  if st == 'sending' and lease_until <= tonumber(ARGV[1]) then
    expire(job, id, ARGV[1], KEYS[2], KEYS[1], KEYS[3], KEYS[4])
    swept = swept + 1
  elseif st ~= 'sending' then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[3], id)
  end
end
return swept
