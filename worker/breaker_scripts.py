"""The circuit breaker's Lua: allow a send, record a failure, record a success.

Split from :mod:`worker.breaker` (size guideline), which calls them. State is
one hash per account (``state``, ``failures``, ``opens``, ``successes``,
``since``, ``open_until``, ``reason``) and a sorted set of probe leases
(member = probe id, score = lease end). Each script is one round trip, and
reads the time from Redis unless the caller passes one (tests). Times are
epoch ms.
"""

from __future__ import annotations

_NOW = """
local function now_ms()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return math.floor(tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000)
end
local now = now_ms()
local st = redis.call('HGET', KEYS[1], 'state') or 'closed'
"""

# KEYS: state, probes.  ARGV: now|'', max_probes, lease_ms, probe_id
# Answers {state, allowed 0|1, retry_in_ms, reason, probe_id, changed}
ALLOW = (
    _NOW
    + """
if st == 'closed' then return {st, 1, 0, '', '', ''} end
local reason = redis.call('HGET', KEYS[1], 'reason') or ''
local changed = ''
if st == 'open' then
  local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until'))
  if now < open_until then return {st, 0, open_until - now, reason, '', ''} end
  st, changed = 'half_open', 'half_open'
  redis.call('HSET', KEYS[1], 'state', st, 'since', now, 'successes', 0)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {st, 1, 0, reason, ARGV[4], changed}
end
-- Probes are out: ask again when the oldest lease ends at the latest.
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {st, 0, math.max(1, tonumber(first[2]) - now), reason, '', changed}
"""
)

# KEYS: state, probes.  ARGV: now|'', probe_id, threshold, base_ms, max_ms, trip, reason
# Answers {state, changed, open_for_ms, failures}
FAILURE = (
    _NOW
    + """
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[2], ARGV[2]) end
-- Already open: a late failure of a send admitted earlier changes nothing.
if st == 'open' then return {st, '', 0, 0} end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if st == 'closed' and ARGV[6] == '0' and failures < tonumber(ARGV[3]) then
  return {st, '', 0, failures}
end
local opens = redis.call('HINCRBY', KEYS[1], 'opens', 1)
local open_for = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ (opens - 1))
redis.call('HSET', KEYS[1], 'state', 'open', 'reason', ARGV[7], 'since', now,
  'open_until', now + open_for, 'successes', 0)
redis.call('DEL', KEYS[2])
return {'open', 'opened', open_for, failures}
"""
)

# KEYS: state, probes.  ARGV: now|'', probe_id, successes_to_close.  Answers {state, changed}
SUCCESS = (
    _NOW
    + """
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[2], ARGV[2]) end
if st == 'closed' then
  local failures = redis.call('HGET', KEYS[1], 'failures')
  if failures and failures ~= '0' then redis.call('HSET', KEYS[1], 'failures', 0) end
  return {st, ''}
end
if st == 'open' then return {st, ''} end
if redis.call('HINCRBY', KEYS[1], 'successes', 1) < tonumber(ARGV[3]) then return {st, ''} end
redis.call('HSET', KEYS[1], 'state', 'closed', 'since', now, 'failures', 0, 'opens', 0,
  'successes', 0, 'open_until', 0)
redis.call('DEL', KEYS[2])
return {'closed', 'closed'}
"""
)
