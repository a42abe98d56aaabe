-- Records a send's outcome, fenced: a worker whose lease was taken over can no
-- longer write. With a provider index key, provider id -> job id is kept
-- (webhooks find the job). The outcome goes to the job's events and, if sent,
-- failed or unknown, to the per-minute history, in the same call.
-- KEYS: job, zset (dead letters or schedule), hash (their messages), provider index,
--       leases zset, in-flight msgs
-- ARGV: fence, mode (done|dead|retry|unknown|lookup), score_ms, job_id, message data,
--       index ttl_s, field/value pairs... (among them updated_at)
-- Answers 1 when written, 0 when the fence moved.
--! include lib_counts.lua
--! include lib_events.lua
--! include lib_history.lua

local h = redis.call('HMGET', KEYS[1], 'fence', 'state', 'campaign', 'attempts', 'ev_n')
if h[1] ~= ARGV[1] or h[2] ~= 'sending' then
  return 0
end
-- The new state is one of the pairs written (one read fewer than reading it back).
local new_state, now, fields, err = nil, 0, {}, {}
for i = 7, #ARGV - 1, 2 do
  local name, value = ARGV[i], ARGV[i + 1]
  if name == 'state' then new_state = value end
  if name == 'updated_at' then now = value end
  if (name == 'error_class' or name == 'last_error') and value ~= '' then err[#err + 1] = value end
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
new_state = new_state or h[2]
local detail = 'attempt ' .. (h[4] or '?')
if #err > 0 then detail = detail .. ': ' .. table.concat(err, ': ') end
redis.call('HSET', KEYS[1], unpack(event_pairs(fields, h[5], now, new_state, detail)))
moved(KEYS[1], 'sending', new_state, h[3])
count_outcome(prefix_of(KEYS[1]), new_state, now, 1, h[3])
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
