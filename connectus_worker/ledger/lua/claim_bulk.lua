-- The claim of a v1 bulk chunk, which also *makes* its job records (they are
-- not made when the chunk is released: one record write per recipient instead
-- of a write at release and a read and write here; Redis's one thread is what
-- a bulk campaign saturates). Bit <chunk> of the 'made' bitmap says whether
-- the chunk's records were made: by its first claim, or by the cancel of a
-- chunk parked before any claim. Once made, the chunk is claimed job by job as
-- claim.lua does, so a redelivered chunk never remakes a record: a record
-- gone (its TTL) answers 'missing' and is not sent again.
-- A chunk released by an older version (records already there, bit unset) is
-- claimed job by job too, and marked made.
-- KEYS: unknown zset, leases zset, in-flight msgs, unknown msgs, campaign, counts,
--       made bitmap, opt-out set
-- ARGV: now_ms, lease_ms, worker_id, claim token, key prefix, campaign_id, chunk number,
--       first index, job ttl_s, made ttl_s, kind, queue, then 4 per row: number,
--       masked number, SMS segments, recipient digest for the search index ('' = none)
-- Answers one claim per row, as claim.lua's. An opted-out number (STOP since
-- the campaign was accepted), and every row of a cancelled campaign, is made
-- cancelled and answers {'done', 'cancelled'}; a paused campaign makes nothing.
--! include lib_claim.lua
--! include ../../campaign/lua/lib_new_record.lua

local now, lease_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
local prefix, cid, chunk, base = ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local n = (#ARGV - 12) / 4
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
  for j = i, math.min(i + 499, n) do numbers[#numbers + 1] = ARGV[9 + 4 * j] end
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
  local at = 9 + 4 * i
  local extra = (out[i] == 1 or cst == 'cancelled') and as_cancelled or as_sending
  extra[#extra] = ARGV[at + 2]
  new_record(jobs[i], ids[i], cid, base + i - 1, ARGV[11], ARGV[12], ARGV[at + 1], now, ttl, extra,
    ARGV[at + 3])
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
