"""The Lua scripts behind campaigns: creation, chunk release, control, parking.

Every step that must not be split by a crash is one script:

- ``CREATE`` commits a campaign whose chunks are already written: record,
  list entry, active set and idempotency key together. Until it runs, the
  chunks are orphans with a TTL that nothing reads.
- ``RELEASE`` fans one chunk out: it creates the chunk's job records and their
  Dramatiq messages *and* advances the cursor, compare-and-set on the cursor.
  ``RELEASE_BULK`` (a v1 bulk chunk) queues the chunk's one message and counts
  its rows; their records are made by the chunk's first claim. A crash before
  a release leaves the chunk unreleased; after it, released exactly once.
  (listmonk moves its checkpoint when a batch is fetched, so a crash between
  fetch and send skips or repeats; here there is no between.)
- ``CONTROL`` changes the campaign's state from an allowed set of states,
  and moves parked messages back to their queues, or cancels their jobs.
- ``PARK`` holds a message met while the campaign can't send, unless the
  campaign runs again by the time it arrives (then it is queued at once).

Times are epoch ms.
"""

from __future__ import annotations

from core.scripts import _COUNT

# KEYS: campaign, campaigns zset, active set, idempotency key ('' = none)
# ARGV: campaign_id, now_ms, ttl_s, fingerprint, field/value pairs...
CREATE = """
if KEYS[4] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then
    local fp = redis.call('HGET', string.gsub(KEYS[1], '[^:]+$', existing), 'fingerprint')
    if fp and fp ~= ARGV[4] then return {'conflict', existing} end
    return {'duplicate', existing}
  end
  redis.call('SET', KEYS[4], ARGV[1], 'EX', tonumber(ARGV[3]))
end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[4], unpack(ARGV, 5, #ARGV))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return {'created', ARGV[1]}
"""

# KEYS: campaign, counts, queue list, queue msgs
# ARGV: expected cursor, now_ms, ttl_s, campaign_id, kind, queue, chunk message id
#       ('' = none), chunk message data, then 7 per job:
#       job_id, idempotency key, masked dst, segments, state (queued, or cancelled
#       for a number that opted out), message id ('' = none), data
# Answers 1 when released, 0 when the cursor moved or the campaign is not running.
RELEASE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running'
   or redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[1] then
  return 0
end
local prefix = string.sub(KEYS[1], 1, string.find(KEYS[1], ':campaign:', 1, true) - 1)
local ttl = tonumber(ARGV[3])
local created = {}
-- A chunk's jobs are new unless a release was repeated: one EXISTS over them all
-- instead of one per job (the per-job check only when some exist).
local jobs = {}
for i = 9, #ARGV, 7 do jobs[#jobs + 1] = prefix .. ':job:' .. ARGV[i] end
local some_exist = false
for i = 1, #jobs, 500 do
  if redis.call('EXISTS', unpack(jobs, i, math.min(i + 499, #jobs))) > 0 then some_exist = true end
end
for i = 9, #ARGV, 7 do
  local job = jobs[(i - 2) / 7]
  if not some_exist or redis.call('EXISTS', job) == 0 then
    local st = ARGV[i + 4]
    redis.call('HSET', job, 'job_id', ARGV[i], 'kind', ARGV[5], 'state', st,
      'queue', ARGV[6], 'idempotency_key', ARGV[i + 1], 'dst', ARGV[i + 2],
      'attempts', 0, 'fence', 0, 'created_at', ARGV[2], 'updated_at', ARGV[2],
      'campaign', ARGV[4], 'segments', ARGV[i + 3])
    if st == 'cancelled' then
      redis.call('HSET', job, 'outcome', 'opted_out', 'error_class', 'OptedOut',
        'last_error', 'opted out of marketing messages')
    end
    redis.call('EXPIRE', job, ttl)
    if st == 'queued' and ARGV[i + 5] ~= '' then
      redis.call('HSET', KEYS[4], ARGV[i + 5], ARGV[i + 6])
      redis.call('RPUSH', KEYS[3], ARGV[i + 5])
    end
    created[st] = (created[st] or 0) + 1
  end
end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[7], ARGV[8])
  redis.call('RPUSH', KEYS[3], ARGV[7])
end
for st, n in pairs(created) do redis.call('HINCRBY', KEYS[2], st, n) end
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('HSET', KEYS[1], 'cursor', tonumber(ARGV[1]) + 1, 'updated_at', ARGV[2])
return 1
"""

# RELEASE for a v1 bulk SMS chunk: O(1), whatever its size. Its rows are
# counted 'queued' and its message queued; their job records are made by the
# chunk's first claim (core.batch_scripts.CLAIM_BULK), which also reads the
# opt-out list. Why: Redis's one thread is what a bulk campaign saturates, and
# records made here were read and written again by the claim a moment later.
# KEYS: campaign, counts, queue list, queue msgs
# ARGV: expected cursor, now_ms, ttl_s, chunk message id, chunk message data, rows
# Answers 1 when released, 0 when the cursor moved or the campaign is not running.
RELEASE_BULK = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running'
   or redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
redis.call('RPUSH', KEYS[3], ARGV[4])
redis.call('HINCRBY', KEYS[2], 'queued', tonumber(ARGV[6]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'cursor', tonumber(ARGV[1]) + 1, 'updated_at', ARGV[2])
return 1
"""

# The mask of a phone number as core.redaction.mask_phone makes it (kept equal by
# tests/unit/test_campaign_bulk_claim.py): country prefix and last 3 digits.
_MASK_PHONE = """
local function mask_phone(text)
  local digits = string.gsub(text, '%D', '')
  if #digits < 8 then return '***' end
  local head = math.max(0, math.min(3, #digits - 8))
  local plus = string.find(text, '^%s*%+') and '+' or ''
  return plus .. string.sub(digits, 1, head) .. string.rep('*', #digits - 3 - head)
    .. string.sub(digits, -3)
end
"""

# A campaign recipient's job record made by a script (CLAIM_BULK in
# core.batch_scripts, CONTROL below): the fields every record has, then ``extra``
# (field/value pairs: its state and what goes with it). TTL: the job TTL (s).
NEW_RECORD = """
local function new_record(job, id, cid, index, kind, queue, dst, now, ttl, extra)
  redis.call('HSET', job, 'job_id', id, 'kind', kind, 'queue', queue,
    'idempotency_key', 'campaign:' .. cid .. ':' .. index, 'dst', dst, 'created_at', now,
    'updated_at', now, 'campaign', cid, unpack(extra))
  redis.call('EXPIRE', job, ttl)
end
"""

# KEYS: campaign, counts, parked, active set
# ARGV: now_ms, dramatiq namespace, to_state, from states (comma-separated),
#       job ttl_s, campaign ttl_s, field/value pairs...
# Answers {'ok', old state} or {'refused', current state ('' = missing)}.
# To 'finished': only once every chunk is released and every job has an outcome
# (none queued, sending, retrying or unknown).
# To 'running': parked messages go back to their queues. To 'cancelled':
# parked jobs (and the jobs of parked bulk chunks) are cancelled.
CONTROL = (
    _COUNT
    + _MASK_PHONE
    + NEW_RECORD
    + """
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'refused', ''} end
local allowed = false
for from in string.gmatch(ARGV[4], '[^,]+') do
  if from == st then allowed = true end
end
if not allowed then return {'refused', st} end
local to = ARGV[3]
if to == 'finished' then
  local c = redis.call('HMGET', KEYS[2], 'queued', 'sending', 'retrying', 'unknown')
  local pending = 0
  for _, n in ipairs(c) do pending = pending + tonumber(n or '0') end
  if pending > 0 or redis.call('HGET', KEYS[1], 'cursor') ~= redis.call('HGET', KEYS[1], 'chunks')
  then
    return {'refused', st}
  end
end
redis.call('HSET', KEYS[1], 'state', to, 'updated_at', ARGV[1])
if #ARGV > 6 then redis.call('HSET', KEYS[1], unpack(ARGV, 7, #ARGV)) end
if to == 'finished' or to == 'cancelled' then
  redis.call('SREM', KEYS[4], KEYS[1]:match('[^:]+$'))
end
if to == 'running' then
  -- A parked message is due again from now (core.expiry reads it).
  redis.call('HSET', KEYS[1], 'resumed_at', ARGV[1])
  local parked = redis.call('HGETALL', KEYS[3])
  for i = 1, #parked, 2 do
    local msg = cjson.decode(parked[i + 1])
    local queue = ARGV[2] .. ':' .. msg['queue_name']
    local rid = msg['options']['redis_message_id']
    redis.call('HSET', queue .. '.msgs', rid, parked[i + 1])
    redis.call('RPUSH', queue, rid)
  end
  redis.call('DEL', KEYS[3])
elseif to == 'cancelled' then
  local prefix = string.sub(KEYS[1], 1, string.find(KEYS[1], ':campaign:', 1, true) - 1)
  local cid = KEYS[1]:match('[^:]+$')
  local size = tonumber(redis.call('HGET', KEYS[1], 'chunk_size'))
  local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
  local parked = redis.call('HGETALL', KEYS[3])
  for p = 1, #parked, 2 do
    local member = parked[p]
    local ids = {}
    local chunk = member:match('^chunk:(%d+)$')
    if chunk then
      for idx = tonumber(chunk) * size, math.min(tonumber(chunk) * size + size, total) - 1 do
        ids[#ids + 1] = cid .. '-' .. idx
      end
    else
      ids[1] = member
    end
    if chunk and redis.call('GETBIT', KEYS[1] .. ':made', tonumber(chunk)) == 0
       and redis.call('EXISTS', prefix .. ':job:' .. ids[1]) == 0 then
      -- A v1 bulk chunk parked before its first claim: no records yet (see
      -- core.batch_scripts.CLAIM_BULK). They are made here, cancelled, and the
      -- chunk marked made, so that a stray copy of its message sends nothing.
      local rows = cjson.decode(redis.call('GET', KEYS[1] .. ':chunk:' .. chunk) or '[]')
      local queue = cjson.decode(parked[p + 1])['queue_name']
      local kind = redis.call('HGET', KEYS[1], 'kind')
      local as_cancelled = {'state', 'cancelled', 'attempts', 0, 'fence', 0, 'outcome', 'cancelled'}
      for i, id in ipairs(ids) do
        new_record(prefix .. ':job:' .. id, id, cid, tonumber(chunk) * size + i - 1, kind, queue,
          mask_phone(rows[i] and rows[i][1] or ''), ARGV[1], tonumber(ARGV[5]), as_cancelled)
      end
      redis.call('HINCRBY', KEYS[2], 'queued', -#ids)
      redis.call('HINCRBY', KEYS[2], 'cancelled', #ids)
      redis.call('SETBIT', KEYS[1] .. ':made', tonumber(chunk), 1)
      redis.call('EXPIRE', KEYS[1] .. ':made', tonumber(ARGV[6]))
    else
      for _, id in ipairs(ids) do
        local job = prefix .. ':job:' .. id
        local js = redis.call('HGET', job, 'state')
        if js == 'queued' or js == 'retrying' then
          moved(job, js, 'cancelled')
          redis.call('HSET', job, 'state', 'cancelled', 'outcome', 'cancelled',
            'updated_at', ARGV[1])
        end
      end
    end
  end
  redis.call('DEL', KEYS[3])
end
return {'ok', st}
"""
)

# KEYS: campaign, parked, queue list, queue msgs
# ARGV: member, message id, data
# Answers 'parked', or 'queued' when the campaign runs (or is gone) by now.
PARK = """
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'scheduled' or st == 'paused' or st == 'window' or st == 'late' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  return 'parked'
end
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
redis.call('RPUSH', KEYS[3], ARGV[2])
return 'queued'
"""

# KEYS: pump lease.  ARGV: owner, ttl_ms
# Takes the lease when free, or renews it for its owner (who would otherwise
# wait for its own lease to expire before the campaign's next step).
PUMP_LOCK = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
"""
