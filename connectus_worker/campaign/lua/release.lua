-- Fans one chunk out: creates the chunk's job records and their Dramatiq
-- messages and advances the cursor, compare-and-set on the cursor.
-- KEYS: campaign, counts, queue list, queue msgs
-- ARGV: expected cursor, now_ms, ttl_s, campaign_id, kind, queue, chunk message id
--       ('' = none), chunk message data, then 7 per job:
--       job_id, idempotency key, masked dst, segments, state (queued, or cancelled
--       for a number that opted out), message id ('' = none), data
-- Answers 1 when released, 0 when the cursor moved or the campaign is not running.
--! include ../../ledger/lua/lib_events.lua
--! include ../../ledger/lua/lib_index.lua

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
for i = 9, #ARGV, 8 do jobs[#jobs + 1] = prefix .. ':job:' .. ARGV[i] end
local some_exist = false
for i = 1, #jobs, 500 do
  if redis.call('EXISTS', unpack(jobs, i, math.min(i + 499, #jobs))) > 0 then some_exist = true end
end
for i = 9, #ARGV, 8 do
  local job = jobs[(i - 1) / 8]
  if not some_exist or redis.call('EXISTS', job) == 0 then
    local st = ARGV[i + 4]
    redis.call('HSET', job, unpack(event_pairs({'job_id', ARGV[i], 'kind', ARGV[5], 'state', st,
      'queue', ARGV[6], 'idempotency_key', ARGV[i + 1], 'dst', ARGV[i + 2],
      'attempts', 0, 'fence', 0, 'created_at', ARGV[2], 'updated_at', ARGV[2],
      'campaign', ARGV[4], 'segments', ARGV[i + 3]}, 0, ARGV[2], st, 'campaign ' .. ARGV[4])))
    if st == 'cancelled' then
      redis.call('HSET', job, 'outcome', 'opted_out', 'error_class', 'OptedOut',
        'last_error', 'opted out of marketing messages')
    end
    redis.call('EXPIRE', job, ttl)
    if ARGV[i + 7] ~= '' then
      index_job(prefix .. ':find:dst:' .. ARGV[i + 7], ARGV[i], ARGV[2], ttl)
    end
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
