-- Writes finished job records and their search index entries for the console
-- bench (bench/console_bench.py), records i = start .. start + #digests - 1: the
-- same shape as bench.console_bench._record (kept equal by its unit test), in one
-- call per 5,000 (Python-side pipelining made 1,000,000 records take minutes).
-- ARGV: key prefix, now_ms, ttl_s, campaigns, start, then one recipient digest per job.

local prefix, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local campaigns, start = tonumber(ARGV[4]), tonumber(ARGV[5])
local function index(key, id, score)
  redis.call('ZADD', key, score, id)
  redis.call('EXPIRE', key, ttl)
end
for n = 6, #ARGV do
  local i = start + n - 6
  local created = now - (i % 86400) * 1000
  local number = string.format('5699%07d', i % 10000000)
  local id, key
  local extra = {}
  if campaigns > 0 and i % 5 < 3 then
    local cid = string.format('cmp%02dbench000000', i % campaigns)
    id, key = cid .. '-' .. i, 'campaign:' .. cid .. ':' .. i
    extra = {'campaign', cid}
  else
    id = string.format('%032x', i)
    key = (i % 2 == 0) and ('order-' .. i) or ('job:' .. id)
    extra = {'tenant', 'default', 'fingerprint', string.format('%064x', i)}
    if i % 4 == 1 then
      extra[#extra + 1] = 'correlation_id'
      extra[#extra + 1] = 'req-' .. i
    end
  end
  local job = prefix .. ':job:' .. id
  redis.call('HSET', job, 'job_id', id, 'kind', 'sms', 'queue', 'transactional',
    'idempotency_key', key, 'dst', string.sub(number, 1, 3) .. '*****' .. string.sub(number, -3),
    'attempts', 1, 'fence', 1, 'segments', 1, 'created_at', created, 'updated_at', created + 900,
    'state', 'sent', 'outcome', 'sent', 'provider_id', 10000000 + i, 'sent_at', created + 900,
    'worker', 'pod-1:7:ab12cd34', 'lease_until', created + 30400,
    'claim_token', string.format('%032x', i), 'ev_n', 2, 'ev:0', '0|' .. created .. '|queued|',
    'ev:1', '1|' .. (created + 900) .. '|sent|attempt 1', unpack(extra))
  redis.call('EXPIRE', job, ttl)
  index(prefix .. ':find:dst:' .. ARGV[n], id, created)
  if string.sub(key, 1, 6) == 'order-' then index(prefix .. ':find:idem:' .. key, id, created) end
  if i % 4 == 1 and not (campaigns > 0 and i % 5 < 3) then
    index(prefix .. ':find:corr:req-' .. i, id, created)
  end
end
return #ARGV - 5
