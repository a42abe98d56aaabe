-- The fenced finish of many jobs with the same fields (a v1 bulk's sent
-- recipients) in one call, as finish.lua's 'done' mode per job (its event and the
-- per-minute history included); per job only job_id, fence, provider id.
-- Answers 1 (written) or 0 (fence moved) per job.
-- KEYS: leases zset, in-flight msgs
-- ARGV: index ttl_s, key prefix, n shared pairs, shared pairs..., then job_id, fence,
--       provider_id...  (the shared pairs hold updated_at)
--! include lib_events.lua
--! include lib_history.lua

local ttl, prefix, nshared = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local shared, new_state, now = {}, nil, 0
for i = 4, 3 + 2 * nshared, 2 do
  shared[#shared + 1] = ARGV[i]
  shared[#shared + 1] = ARGV[i + 1]
  if ARGV[i] == 'state' then new_state = ARGV[i + 1] end
  if ARGV[i] == 'updated_at' then now = ARGV[i + 1] end
end
local moves, landed, done, moved_n = {}, {}, {}, 0
for i = 4 + 2 * nshared, #ARGV, 3 do
  local id, fence, pid = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local job = prefix .. ':job:' .. id
  local h = redis.call('HMGET', job, 'fence', 'state', 'campaign', 'attempts', 'ev_n')
  if h[1] ~= fence or h[2] ~= 'sending' then
    landed[#landed + 1] = 0
  else
    local fields = event_pairs({'provider_id', pid}, h[5], now, new_state or 'sending',
      'attempt ' .. (h[4] or '?'))
    for j = 1, #shared do fields[#fields + 1] = shared[j] end
    redis.call('HSET', job, unpack(fields))
    if h[3] then
      moves[h[3]] = (moves[h[3]] or 0) + 1
      moved_n = moved_n + 1
    end
    done[#done + 1] = id
    if pid ~= '' then redis.call('SET', prefix .. ':provider:' .. pid, id, 'EX', ttl) end
    landed[#landed + 1] = 1
  end
end
count_outcome(prefix, new_state, now, #done - moved_n)
for c, n in pairs(moves) do
  count_outcome(prefix, new_state, now, n, c)
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
