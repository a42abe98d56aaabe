-- Records a delivery status on a job, rank-ordered and idempotent.
-- The status is also one of the job's events.
-- KEYS: job.  ARGV: status, now_ms, rank.  Answers 1 if the record changed.
--! include lib_events.lua

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'delivery_status_rank') or '-1')
if tonumber(ARGV[3]) < current or redis.call('HGET', KEYS[1], 'delivery_status') == ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'delivery_status', ARGV[1], 'delivery_status_at', ARGV[2],
  'delivery_status_rank', ARGV[3])
log_event(KEYS[1], ARGV[2], 'delivery_status', ARGV[1])
return 1
