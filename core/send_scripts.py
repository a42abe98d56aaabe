"""The Lua scripts of one send: claim (take the lease), finish (fenced), sweep.

Moved out of :mod:`core.scripts` (one concept per module), which keeps the
transitions around a send (enqueue, promote, cancel, replay, resolve). Here:
``CLAIM`` moves a job to ``sending`` under a lease and a fence, ``FINISH``
records the outcome only if the fence still holds, and ``SWEEP`` moves a job
whose lease ran out to ``unknown`` for the reconciler. ``CLAIM_FUNCTION`` is
the claim alone, for scripts that claim together with other work. Each script
is one round trip. Times are epoch ms.
"""

from __future__ import annotations

from core.scripts import _COUNT

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
# ARGV: fence, mode (done|dead|retry|unknown|lookup), score_ms, job_id, message data,
#       index ttl_s, field/value pairs...
# ``lookup``: sent, but Connectus named no id; the zset/hash are the id lookup's.
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
if ARGV[2] == 'dead' or ARGV[2] == 'retry' or ARGV[2] == 'unknown' or ARGV[2] == 'lookup' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
end
return 1
"""
)
