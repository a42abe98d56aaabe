-- Acknowledge a batch of messages and fetch the next batch, in one round trip.
-- The key layout and each step are those of Dramatiq's dispatch.lua ('ack':
-- SREM from this worker's acks set, and HDEL the payload only if this worker
-- still held it; 'fetch': LPOP, SADD to the acks set, HMGET the payloads; every
-- call refreshes this worker's heartbeat).
-- KEYS: heartbeats, acks set, queue list, payload hash.
-- ARGV: now (ms), worker id, how many to fetch, then the ids to acknowledge.

redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
for i = 4, #ARGV do
  if redis.call('SREM', KEYS[2], ARGV[i]) > 0 then
    redis.call('HDEL', KEYS[4], ARGV[i])
  end
end
local n = tonumber(ARGV[3])
local ids = {}
for i = 1, n do
  local id = redis.call('LPOP', KEYS[3])
  if not id then
    break
  end
  ids[i] = id
  redis.call('SADD', KEYS[2], id)
end
if #ids == 0 then
  return {}
end
return redis.call('HMGET', KEYS[4], unpack(ids))
