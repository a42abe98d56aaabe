"""The Lua behind :mod:`core.jobs_batch`: many jobs in one round trip (a v1 bulk chunk).

Each answers per job exactly what one :data:`core.send_scripts.CLAIM` or ``FINISH``
would, with the per-job bookkeeping written once per batch (campaign counts,
leases, in-flight copies). Times are epoch ms.
"""

from __future__ import annotations

from core.campaign.scripts import NEW_RECORD
from core.send_scripts import CLAIM_FUNCTION

# KEYS: unknown zset, leases zset, in-flight msgs, unknown msgs
# ARGV: now_ms, lease_ms, worker_id, claim token, key prefix, job ids...
# Claims many jobs in one round trip (a v1 bulk of up to 1,000); one answer
# per job, as CLAIM's. No in-flight copy: the bulk's own message is the copy.
# Campaign counts and leases are written once for the batch, at the end.
CLAIM_MANY = (
    CLAIM_FUNCTION
    + """
deferred_moves, deferred_leases = {}, {}
local answers, campaign_states = {}, {}
local now, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 6, #ARGV do
  local id = ARGV[i]
  answers[#answers + 1] = claim(ARGV[5] .. ':job:' .. id, id, now, lease_ms, ARGV[3], ARGV[4],
    '', KEYS[1], KEYS[2], KEYS[3], KEYS[4], campaign_states)
end
apply_moves()
variadic('ZADD', KEYS[2], deferred_leases)
return answers
"""
)


# The fenced finish of many jobs with the same fields (a v1 bulk's sent recipients)
# in one call, as FINISH's "done" mode per job; per job only job_id, fence, provider id.
# KEYS: leases zset, in-flight msgs
# ARGV: index ttl_s, key prefix, n shared pairs, shared pairs..., then job_id, fence, provider_id...
FINISH_SENT_MANY = """
local ttl, prefix, nshared = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local shared, new_state = {}, nil
for i = 4, 3 + 2 * nshared, 2 do
  shared[#shared + 1] = ARGV[i]
  shared[#shared + 1] = ARGV[i + 1]
  if ARGV[i] == 'state' then new_state = ARGV[i + 1] end
end
local moves, landed, done = {}, {}, {}
for i = 4 + 2 * nshared, #ARGV, 3 do
  local id, fence, pid = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local job = prefix .. ':job:' .. id
  local h = redis.call('HMGET', job, 'fence', 'state', 'campaign')
  if h[1] ~= fence or h[2] ~= 'sending' then
    landed[#landed + 1] = 0
  else
    redis.call('HSET', job, 'provider_id', pid, unpack(shared))
    if h[3] then moves[h[3]] = (moves[h[3]] or 0) + 1 end
    done[#done + 1] = id
    if pid ~= '' then redis.call('SET', prefix .. ':provider:' .. pid, id, 'EX', ttl) end
    landed[#landed + 1] = 1
  end
end
for c, n in pairs(moves) do
  local counts = prefix .. ':campaign:' .. c .. ':counts'
  redis.call('HINCRBY', counts, 'sending', -n)
  redis.call('HINCRBY', counts, new_state, n)
end
-- Leases and in-flight copies of the finished jobs: one command each per slice.
for i = 1, #done, 500 do
  local slice = {unpack(done, i, math.min(i + 499, #done))}
  redis.call('ZREM', KEYS[1], unpack(slice))
  redis.call('HDEL', KEYS[2], unpack(slice))
end
return landed
"""


# The claim of a v1 bulk chunk, which also *makes* its job records (they are
# not made when the chunk is released: one record write per recipient instead
# of a write at release and a read and write here; Redis's one thread is what
# a bulk campaign saturates). Bit <chunk> of the ``made`` bitmap says whether
# the chunk's records were made: by its first claim, or by the cancel of a
# chunk parked before any claim. Once made, the chunk is claimed job by job as
# CLAIM_MANY does, so a redelivered chunk never remakes a record: a record gone
# (its TTL) answers 'missing' and is not sent again.
# A chunk released by an older version (records already there, bit unset) is
# claimed job by job too, and marked made.
# KEYS: unknown zset, leases zset, in-flight msgs, unknown msgs, campaign, counts,
#       made bitmap, opt-out set
# ARGV: now_ms, lease_ms, worker_id, claim token, key prefix, campaign_id, chunk number,
#       first index, job ttl_s, made ttl_s, kind, queue, then 3 per row: number,
#       masked number, SMS segments
# Answers one claim per row, as CLAIM_MANY's. An opted-out number (STOP since the
# campaign was accepted), and every row of a cancelled campaign, is made
# cancelled and answers {'done', 'cancelled'}; a paused campaign makes nothing.
CLAIM_BULK = (
    CLAIM_FUNCTION
    + NEW_RECORD
    + """
local now, lease_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
local prefix, cid, chunk, base = ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local n = (#ARGV - 12) / 3
local ids, jobs, answers = {}, {}, {}
for i = 1, n do
  ids[i] = cid .. '-' .. (base + i - 1)
  jobs[i] = prefix .. ':job:' .. ids[i]
end
local function made()
  redis.call('SETBIT', KEYS[7], chunk, 1)
  redis.call('EXPIRE', KEYS[7], tonumber(ARGV[10]))
end
local one_by_one = redis.call('GETBIT', KEYS[7], chunk) == 1
if not one_by_one then
  for i = 1, n, 500 do
    if redis.call('EXISTS', unpack(jobs, i, math.min(i + 499, n))) > 0 then one_by_one = true end
  end
  if one_by_one then made() end
end
if one_by_one then
  deferred_moves, deferred_leases = {}, {}
  local campaign_states = {}
  for i = 1, n do
    answers[i] = claim(jobs[i], ids[i], now, lease_ms, ARGV[3], token, '', KEYS[1], KEYS[2],
      KEYS[3], KEYS[4], campaign_states)
  end
  apply_moves()
  variadic('ZADD', KEYS[2], deferred_leases)
  return answers
end
-- Not made yet: every row is counted 'queued' (by the release) and has no record.
local cst = redis.call('HGET', KEYS[5], 'state')
if not cst then
  for i = 1, n do answers[i] = {'missing'} end
  return answers
end
if cst ~= 'running' and cst ~= 'finished' and cst ~= 'cancelled' then
  for i = 1, n do answers[i] = {'paused', cst} end
  return answers
end
local out = {}
for i = 1, n, 500 do
  local numbers = {}
  for j = i, math.min(i + 499, n) do numbers[#numbers + 1] = ARGV[10 + 3 * j] end
  for j, flag in ipairs(redis.call('SMISMEMBER', KEYS[8], unpack(numbers))) do
    out[i + j - 1] = flag
  end
end
local ttl, lease_until, leases = tonumber(ARGV[9]), now + lease_ms, {}
-- Each state's fields; the last value, the row's segments, is set per row.
local as_sending = {'state', 'sending', 'attempts', 1, 'fence', 1, 'lease_until', lease_until,
  'worker', ARGV[3], 'claim_token', token, 'segments', ''}
local as_cancelled = {'state', 'cancelled', 'attempts', 0, 'fence', 0, 'outcome', 'cancelled',
  'segments', ''}
local sending, cancelled = 0, 0
for i = 1, n do
  local at = 10 + 3 * i
  local extra = (out[i] == 1 or cst == 'cancelled') and as_cancelled or as_sending
  extra[#extra] = ARGV[at + 2]
  new_record(jobs[i], ids[i], cid, base + i - 1, ARGV[11], ARGV[12], ARGV[at + 1], now, ttl, extra)
  if extra == as_sending then
    leases[#leases + 1] = lease_until
    leases[#leases + 1] = ids[i]
    sending = sending + 1
    answers[i] = {'ok', 1, 1}
  else
    if out[i] == 1 then
      redis.call('HSET', jobs[i], 'outcome', 'opted_out', 'error_class', 'OptedOut',
        'last_error', 'opted out of marketing messages')
    end
    cancelled = cancelled + 1
    answers[i] = {'done', 'cancelled'}
  end
end
redis.call('HINCRBY', KEYS[6], 'queued', -n)
if sending > 0 then redis.call('HINCRBY', KEYS[6], 'sending', sending) end
if cancelled > 0 then redis.call('HINCRBY', KEYS[6], 'cancelled', cancelled) end
variadic('ZADD', KEYS[2], leases)
made()
return answers
"""
)
