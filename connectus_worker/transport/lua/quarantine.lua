-- Quarantines a payload that can't be decoded: finds its broker id among this
-- consumer's unacked ids by content, removes it from the queue's bookkeeping
-- and keeps it, with the reason, in the dead-letter set as "poison:<id>".
-- KEYS: the consumer's acks set, queue msgs, dead-letter zset, dead-letter msgs,
--       dead-letter reasons.  ARGV: raw data, now_ms, reason
-- Answers the dead-letter member, or false when the payload was not found.

local ids = redis.call('SMEMBERS', KEYS[1])
for _, id in ipairs(ids) do
  if redis.call('HGET', KEYS[2], id) == ARGV[1] then
    local member = 'poison:' .. id
    redis.call('SREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZADD', KEYS[3], ARGV[2], member)
    redis.call('HSET', KEYS[4], member, ARGV[1])
    redis.call('HSET', KEYS[5], member, ARGV[3])
    return member
  end
end
return false
