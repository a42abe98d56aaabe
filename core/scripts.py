"""The Lua scripts behind the job ledger: every state transition is atomic.

Each script is one round trip. They write Dramatiq's Redis layout directly
(``{ns}:{queue}`` list of ids + ``{ns}:{queue}.msgs`` hash), the same two
writes ``RedisBroker.enqueue`` makes, so that creating a job record and
enqueuing its message can never be separated by a crash. Times are epoch ms.
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

# The move of a job whose lease ran out to ``unknown`` (shared by CLAIM and
# SWEEP): it may have been sent; never resend blindly. Its in-flight message
# copy goes with it, for the reconciler.
_EXPIRE = (
    _COUNT
    + """
local function expire(job, job_id, now, unknown, leases, inflight, unknown_msgs)
  moved(job, 'sending', 'unknown')
  redis.call('HSET', job, 'state', 'unknown', 'outcome', 'ambiguous',
    'error_class', 'LeaseExpired', 'last_error', 'worker lost its lease while sending',
    'updated_at', now)
  redis.call('ZADD', unknown, now, job_id)
  redis.call('ZREM', leases, job_id)
  local data = redis.call('HGET', inflight, job_id)
  if data then
    redis.call('HSET', unknown_msgs, job_id, data)
    redis.call('HDEL', inflight, job_id)
  end
end
"""
)

# The claim of one job, shared by CLAIM and CLAIM_MANY.
# Answers: {'ok', fence, attempts} | {'done', state} | {'busy', lease_until}
#          | {'unknown'} | {'expired'} | {'missing'} | {'paused', campaign state}
# The claim token makes a retried claim whose first answer was lost (a Redis
# blip) recognise itself instead of finding the job busy. A job of a campaign
# is claimed only while its campaign runs: cancelled -> the job is cancelled
# here, in the same step, so that cancelling stops every pod at its next claim;
# paused, outside its window or late -> 'paused' (the caller parks the message).
_CLAIM_ONE = (
    _EXPIRE
    + """
-- While CLAIM_MANY defers them (a table), leases taken are collected as
-- score/member pairs and added with one ZADD at its end.
local deferred_leases = nil
local function claim(job, job_id, now, lease_ms, worker, token, copy, unknown, leases,
                     inflight, unknown_msgs, campaign_states)
  local h = redis.call('HMGET', job, 'state', 'campaign', 'fence', 'attempts', 'claim_token',
    'lease_until')
  local st, c = h[1], h[2]
  if not st then return {'missing'} end
  if st == 'sent' or st == 'failed' or st == 'cancelled' then return {'done', st} end
  if st == 'unknown' then return {'unknown'} end
  if st == 'sending' then
    if h[5] == token then return {'ok', h[3], h[4]} end
    if now < tonumber(h[6] or '0') then return {'busy', h[6]} end
    expire(job, job_id, now, unknown, leases, inflight, unknown_msgs)
    return {'expired'}
  end
  if c then
    -- One read of the campaign's state per call (a bulk claims 1,000 of its jobs).
    local cst = campaign_states[c]
    if cst == nil then
      cst = redis.call('HGET', campaign_key(job, c), 'state') or false
      campaign_states[c] = cst
    end
    if cst == 'cancelled' then
      moved(job, st, 'cancelled', c)
      redis.call('HSET', job, 'state', 'cancelled', 'outcome', 'cancelled', 'updated_at', now)
      return {'done', 'cancelled'}
    end
    if cst and cst ~= 'running' and cst ~= 'finished' then return {'paused', cst} end
  end
  moved(job, st, 'sending', c)
  local fence = tonumber(h[3] or '0') + 1
  local attempts = tonumber(h[4] or '0') + 1
  local lease_until = now + lease_ms
  redis.call('HSET', job, 'state', 'sending', 'fence', fence, 'attempts', attempts,
    'lease_until', lease_until, 'worker', worker, 'claim_token', token, 'updated_at', now)
  if deferred_leases then
    deferred_leases[#deferred_leases + 1] = lease_until
    deferred_leases[#deferred_leases + 1] = job_id
  else
    redis.call('ZADD', leases, lease_until, job_id)
  end
  if copy ~= '' then redis.call('HSET', inflight, job_id, copy) end
  return {'ok', fence, attempts}
end
"""
)

# KEYS: job, unknown zset, leases zset, in-flight msgs, unknown msgs
# ARGV: now_ms, lease_ms, worker_id, job_id, claim token, message copy
CLAIM = (
    _CLAIM_ONE
    + """
return claim(KEYS[1], ARGV[4], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[5], ARGV[6],
  KEYS[2], KEYS[3], KEYS[4], KEYS[5], {})
"""
)

#: The ``claim`` Lua function alone, for scripts elsewhere that claim a job
#: together with other work (``worker.admission``: a rate-limiter token).
CLAIM_FUNCTION = _CLAIM_ONE

# KEYS: leases zset, unknown zset, in-flight msgs, unknown msgs.
# ARGV: now_ms, limit, key prefix
# The safety net: a job still ``sending`` after its lease, with no message
# left to bring it back (its worker died, or lost Redis and gave up), is
# moved to ``unknown`` for the reconciler.
SWEEP = (
    _EXPIRE
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local swept = 0
for _, id in ipairs(ids) do
  local job = ARGV[3] .. ':job:' .. id
  local st = redis.call('HGET', job, 'state')
  local lease_until = tonumber(redis.call('HGET', job, 'lease_until') or '0')
  if st == 'sending' and lease_until <= tonumber(ARGV[1]) then
    expire(job, id, ARGV[1], KEYS[2], KEYS[1], KEYS[3], KEYS[4])
    swept = swept + 1
  elseif st ~= 'sending' then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[3], id)
  end
end
return swept
"""
)

# KEYS: job, zset (dead letters or schedule), hash (their messages), provider index,
#       leases zset, in-flight msgs
# ARGV: fence, mode (done|dead|retry|unknown), score_ms, job_id, message data,
#       index ttl_s, field/value pairs...
# Fenced: a worker whose lease was taken over can no longer write.
# With a provider index key, provider id -> job id is kept (webhooks find the job).
FINISH = (
    _COUNT
    + """
local h = redis.call('HMGET', KEYS[1], 'fence', 'state', 'campaign')
if h[1] ~= ARGV[1] or h[2] ~= 'sending' then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7, #ARGV))
-- The new state is one of the pairs written (one read fewer than reading it back).
local new_state = nil
for i = 7, #ARGV - 1, 2 do
  if ARGV[i] == 'state' then new_state = ARGV[i + 1] end
end
moved(KEYS[1], 'sending', new_state or redis.call('HGET', KEYS[1], 'state'), h[3])
redis.call('ZREM', KEYS[5], ARGV[4])
redis.call('HDEL', KEYS[6], ARGV[4])
if KEYS[4] ~= '' then
  redis.call('SET', KEYS[4], ARGV[4], 'EX', tonumber(ARGV[6]))
end
if ARGV[2] == 'dead' or ARGV[2] == 'retry' or ARGV[2] == 'unknown' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
end
return 1
"""
)

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
