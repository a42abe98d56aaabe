"""The broker's Lua scripts: batched ack and fetch, resync after a lost answer, quarantine.

Each runs in one round trip; :mod:`core.broker` registers them on its client.
"""

from __future__ import annotations

#: Acknowledge a batch of messages and fetch the next batch, in one round trip.
#: The key layout and each step are those of Dramatiq's ``dispatch.lua``
#: (``ack``: SREM from this worker's acks set, and HDEL the payload only if
#: this worker still held it; ``fetch``: LPOP, SADD to the acks set, HMGET the
#: payloads; every call refreshes this worker's heartbeat).
#: KEYS: heartbeats, acks set, queue list, payload hash.
#: ARGV: now (ms), worker id, how many to fetch, then the ids to acknowledge.
ACK_AND_FETCH = """
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
"""


#: Put back in the queue every id of this worker's acks set that the process
#: no longer holds: what a fetch whose answer was lost moved there (the fetch
#: ran, Redis died or the connection broke before the answer arrived). Those
#: ids would otherwise wait in the acks set of a live worker, where Dramatiq's
#: maintenance never looks (it requeues the acks of dead workers only).
#: KEYS: acks set, queue list, payload hash. ARGV: the ids the process holds.
RESYNC = """
local kept = {}
for i = 1, #ARGV do
  kept[ARGV[i]] = true
end
local back = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not kept[id] then
    redis.call('SREM', KEYS[1], id)
    if redis.call('HEXISTS', KEYS[3], id) == 1 then
      redis.call('LPUSH', KEYS[2], id)
      back = back + 1
    end
  end
end
return back
"""

# KEYS: the consumer's acks set, queue msgs, dead-letter zset, dead-letter msgs,
#       dead-letter reasons.  ARGV: raw data, now_ms, reason
# Quarantines a payload that can't be decoded: finds its broker id among this
# consumer's unacked ids by content, removes it from the queue's bookkeeping
# and keeps it, with the reason, in the dead-letter set as "poison:<id>".
QUARANTINE = """
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
"""
