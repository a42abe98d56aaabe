-- Cancels a job that has not started sending; a scheduled one never fires.
-- KEYS: job, schedule zset, schedule msgs.  ARGV: job_id, now_ms
--! include lib_counts.lua
--! include lib_events.lua

local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing'} end
if st ~= 'queued' and st ~= 'scheduled' and st ~= 'retrying' then return {'refused', st} end
moved(KEYS[1], st, 'cancelled')
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'updated_at', ARGV[2])
log_event(KEYS[1], ARGV[2], 'cancelled', 'was ' .. st)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return {'cancelled', st}
