-- Moves due scheduled messages onto their Dramatiq queues, atomically per batch.
-- KEYS: schedule zset, schedule msgs.  ARGV: now_ms, limit, dramatiq namespace, key prefix
-- Answers how many ids were due.

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local data = redis.call('HGET', KEYS[2], id)
  if data then
    local msg = cjson.decode(data)
    local queue = ARGV[3] .. ':' .. msg['queue_name']
    local rid = msg['options']['redis_message_id']
    redis.call('HSET', queue .. '.msgs', rid, data)
    redis.call('RPUSH', queue, rid)
    redis.call('HDEL', KEYS[2], id)
    local job = ARGV[4] .. ':job:' .. id
    local st = redis.call('HGET', job, 'state')
    if st == 'scheduled' then
      redis.call('HSET', job, 'state', 'queued', 'updated_at', ARGV[1])
    end
  end
  redis.call('ZREM', KEYS[1], id)
end
return #ids
