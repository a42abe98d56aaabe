-- Records a send's outcome, fenced: a worker whose lease was taken over can no
-- longer write. With a provider index key, provider id -> job id is kept
-- (webhooks find the job).
-- KEYS: job, zset (dead letters or schedule), hash (their messages), provider index,
--       leases zset, in-flight msgs
-- ARGV: fence, mode (done|dead|retry|unknown|lookup), score_ms, job_id, message data,
--       index ttl_s, field/value pairs...
-- Answers 1 when written, 0 when the fence moved.
--! include lib_counts.lua

local h = redis.call('HMGET', KEYS[1], 'fence', 'state', 'campaign')
if h[1] ~= ARGV[1] or h[2] ~= 'sending' then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7, #ARGV))
-- The new state is one of the pairs written (one read fewer than reading it back).
local new_state = nil
for i = 7, #ARGV - 1, 2 do
  if ARGV[i] == 'state' then new_state = ARGV[i + 1] end
end
moved(KEYS[1], 'sending', new_state or redis.call('HGET', KEYS[1], 'state'), h[3])
redis.call('ZREM', KEYS[5], ARGV[4])
redis.call('HDEL', KEYS[6], ARGV[4])
if KEYS[4] ~= '' then
  redis.call('SET', KEYS[4], ARGV[4], 'EX', tonumber(ARGV[6]))
end
if ARGV[2] == 'dead' or ARGV[2] == 'retry' or ARGV[2] == 'unknown' or ARGV[2] == 'lookup' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
end
return 1
