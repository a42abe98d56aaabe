"""The Lua behind :mod:`core.jobs_batch`: many jobs in one round trip (a v1 bulk chunk).

Each answers per job exactly what one :data:`core.send_scripts.CLAIM` or ``FINISH``
would, with the per-job bookkeeping written once per batch (campaign counts,
leases, in-flight copies). Times are epoch ms.
"""

from __future__ import annotations

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
