-- Changes a campaign's state from an allowed set of states.
-- KEYS: campaign, counts, parked, active set
-- ARGV: now_ms, dramatiq namespace, to_state, from states (comma-separated),
--       job ttl_s, campaign ttl_s, field/value pairs...
-- Answers {'ok', old state} or {'refused', current state ('' = missing)}.
-- To 'finished': only once every chunk is released and every job has an outcome
-- (none queued, sending, retrying or unknown).
-- To 'running': parked messages go back to their queues. To 'cancelled':
-- parked jobs (and the jobs of parked bulk chunks) are cancelled.
--! include ../../ledger/lua/lib_counts.lua
--! include lib_mask_phone.lua
--! include lib_new_record.lua

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
  -- A parked message is due again from now (connectus_worker.domain.expiry reads it).
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
