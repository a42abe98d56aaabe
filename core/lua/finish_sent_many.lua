-- The fenced finish of many jobs with the same fields (a v1 bulk's sent
-- recipients) in one call, as finish.lua's 'done' mode per job; per job only
-- job_id, fence, provider id. Answers 1 (written) or 0 (fence moved) per job.
-- KEYS: leases zset, in-flight msgs
-- ARGV: index ttl_s, key prefix, n shared pairs, shared pairs..., then job_id, fence,
--       provider_id...

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
