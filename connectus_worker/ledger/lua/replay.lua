-- Replays a dead letter: back to queued, same job id, same idempotency key.
-- KEYS: job, dead-letter zset, dead-letter msgs, queue list, queue msgs
-- ARGV: job_id, now_ms, redis_message_id, message data
--! include lib_counts.lua
--! include lib_events.lua

local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing'} end
if st ~= 'failed' then return {'refused', st} end
moved(KEYS[1], 'failed', 'queued')
redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[2], 'outcome', '',
  'error_class', '', 'last_error', '')
log_event(KEYS[1], ARGV[2], 'replayed', 'from the dead letters')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[3], ARGV[4])
redis.call('RPUSH', KEYS[4], ARGV[3])
return {'replayed', st}
