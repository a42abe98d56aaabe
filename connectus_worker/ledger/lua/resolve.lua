-- Resolves a job in 'unknown' (or in review); a no-op for any other state,
-- so two reconcilers racing on one job can't both act.
-- KEYS: job, source zset, source msgs, review zset, review msgs, target A, target B
-- ARGV: job_id, now_ms, mode, then per mode:
--   sent:    provider_id, ttl_s          (A = provider index)
--   requeue: redis_message_id, data      (A = queue list, B = queue msgs)
--   review:  data                        (the message, kept for an operator)
--   fail:    error_class, last_error
--! include lib_counts.lua
--! include lib_events.lua

local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'unknown' then return 0 end
local mode = ARGV[3]
local target = ({sent = 'sent', requeue = 'queued', fail = 'failed'})[mode]
if target then moved(KEYS[1], 'unknown', target) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
log_event(KEYS[1], ARGV[2], 'reconciled', mode == 'fail' and (ARGV[4] .. ': ' .. ARGV[5]) or mode)
if mode == 'sent' then
  redis.call('HSET', KEYS[1], 'state', 'sent', 'outcome', 'sent', 'provider_id', ARGV[4],
    'sent_at', ARGV[2], 'updated_at', ARGV[2], 'reconciled', 'found')
  redis.call('SET', KEYS[6], ARGV[1], 'EX', tonumber(ARGV[5]))
elseif mode == 'requeue' then
  redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[2], 'reconciled', 'not_found')
  redis.call('HSET', KEYS[7], ARGV[4], ARGV[5])
  redis.call('RPUSH', KEYS[6], ARGV[4])
elseif mode == 'review' then
  redis.call('HSET', KEYS[1], 'outcome', 'review', 'updated_at', ARGV[2])
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[4])
else
  redis.call('HSET', KEYS[1], 'state', 'failed', 'outcome', 'permanent', 'error_class', ARGV[4],
    'last_error', ARGV[5], 'updated_at', ARGV[2], 'reconciled', 'not_found')
end
return 1
