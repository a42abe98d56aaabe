"""The Lua scripts behind the job ledger: every state transition is atomic.

Each script is one round trip. They write Dramatiq's Redis layout directly
(``{ns}:{queue}`` list of ids + ``{ns}:{queue}.msgs`` hash), the same two
writes ``RedisBroker.enqueue`` makes, so that creating a job record and
enqueuing its message can never be separated by a crash. Times are epoch ms.

Here are the transitions around a send (enqueue, promote, cancel, replay,
resolve) and the campaign bookkeeping they all share; the send's own (claim,
finish, the sweep of expired leases) are in :mod:`core.send_scripts`.
"""

from __future__ import annotations

# Campaign bookkeeping shared by every script that changes a job's state: a
# job of a campaign (field ``campaign``) moves one unit between the state
# counters of ``{prefix}:campaign:{id}:counts``, so a campaign's counts by
# state cost O(1) per transition instead of a scan of its jobs.
_COUNT = """
-- While a batch script defers them (a table, see apply_moves), moves are summed
-- per counts key and applied once at its end: 2 HINCRBY per batch and state
-- instead of per job. Within one script nothing reads the counts in between.
local deferred_moves = nil
local function campaign_key(job, c)
  return string.sub(job, 1, string.find(job, ':job:', 1, true) - 1) .. ':campaign:' .. c
end
-- c: the job's campaign as the caller already read it (false: none); nil: read here.
local function moved(job, old, new, c)
  if old == new then return end
  if c == nil then c = redis.call('HGET', job, 'campaign') end
  if not c then return end
  local counts = campaign_key(job, c) .. ':counts'
  if deferred_moves then
    local m = deferred_moves[counts]
    if not m then m = {}; deferred_moves[counts] = m end
    if old then m[old] = (m[old] or 0) - 1 end
    m[new] = (m[new] or 0) + 1
    return
  end
  if old then redis.call('HINCRBY', counts, old, -1) end
  redis.call('HINCRBY', counts, new, 1)
end
local function apply_moves()
  for counts, m in pairs(deferred_moves or {}) do
    for st, n in pairs(m) do
      if n ~= 0 then redis.call('HINCRBY', counts, st, n) end
    end
  end
  deferred_moves = nil
end
-- One variadic command for many members/fields (in slices: Lua's unpack has a
-- stack limit of a few thousand values).
local function variadic(cmd, key, values)
  for i = 1, #values, 500 do
    redis.call(cmd, key, unpack(values, i, math.min(i + 499, #values)))
  end
end
"""
# KEYS: idem, job, queue list, queue msgs, schedule zset, schedule msgs
# ARGV: job_id, fingerprint, ttl_s, mode (queue|schedule), due_ms,
#       redis_message_id, message data, key prefix, field/value pairs...
ENQUEUE = """
local ttl = tonumber(ARGV[3])
-- Take the key if it is free (the common case: one command, not GET then SET).
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ttl) then
  local existing = redis.call('GET', KEYS[1])
  local fp = redis.call('HGET', ARGV[8] .. ':job:' .. existing, 'fingerprint')
  if fp and fp ~= ARGV[2] then return {'conflict', existing} end
  return {'duplicate', existing}
end
redis.call('HSET', KEYS[2], 'fingerprint', ARGV[2], unpack(ARGV, 9, #ARGV))
redis.call('EXPIRE', KEYS[2], ttl)
if ARGV[4] == 'schedule' then
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
  redis.call('HSET', KEYS[6], ARGV[1], ARGV[7])
else
  redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
  redis.call('RPUSH', KEYS[3], ARGV[6])
end
return {'created', ARGV[1]}
"""

# KEYS: schedule zset, schedule msgs.  ARGV: now_ms, limit, dramatiq namespace, key prefix
# Moves due messages onto their Dramatiq queues, atomically per batch.
PROMOTE = """
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
"""

# KEYS: job, schedule zset, schedule msgs.  ARGV: job_id, now_ms
# Cancels a job that has not started sending; a scheduled one never fires.
CANCEL = (
    _COUNT
    + """
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing'} end
if st ~= 'queued' and st ~= 'scheduled' and st ~= 'retrying' then return {'refused', st} end
moved(KEYS[1], st, 'cancelled')
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'updated_at', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return {'cancelled', st}
"""
)

# KEYS: job, dead-letter zset, dead-letter msgs, queue list, queue msgs
# ARGV: job_id, now_ms, redis_message_id, message data
# Replays a dead letter: back to queued, same job id, same idempotency key.
REPLAY = (
    _COUNT
    + """
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing'} end
if st ~= 'failed' then return {'refused', st} end
moved(KEYS[1], 'failed', 'queued')
redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[2], 'outcome', '',
  'error_class', '', 'last_error', '')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[3], ARGV[4])
redis.call('RPUSH', KEYS[4], ARGV[3])
return {'replayed', st}
"""
)

# KEYS: job, source zset, source msgs, review zset, review msgs, target A, target B
# ARGV: job_id, now_ms, mode, then per mode:
#   sent:    provider_id, ttl_s          (A = provider index)
#   requeue: redis_message_id, data      (A = queue list, B = queue msgs)
#   review:  data                        (the message, kept for an operator)
#   fail:    error_class, last_error
# Resolves a job in ``unknown`` (or in review); a no-op for any other state,
# so two reconcilers racing on one job can't both act.
RESOLVE = (
    _COUNT
    + """
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'unknown' then return 0 end
local mode = ARGV[3]
local target = ({sent = 'sent', requeue = 'queued', fail = 'failed'})[mode]
if target then moved(KEYS[1], 'unknown', target) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
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
"""
)
