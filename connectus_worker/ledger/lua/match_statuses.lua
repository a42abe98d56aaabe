-- Applies pending statuses whose message now has a job (the same rule as
-- record_status.lua), newest first (a status for a message not ours waits,
-- unmatched, at the old end); forgets those older than max_age_ms (a message id
-- that was never ours).
-- KEYS: pending hash, pending since zset.  ARGV: now_ms, limit, key prefix, max_age_ms.
-- Answers {matched, expired}.
--! include lib_events.lua

local now, prefix = tonumber(ARGV[1]), ARGV[3]
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
for _, id in ipairs(old) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
local matched = 0
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1)) do
  local job_id = redis.call('GET', prefix .. ':provider:' .. id)
  if job_id then
    local rank, status, at = string.match(redis.call('HGET', KEYS[1], id) or '',
      '^(%-?%d+)|([^|]*)|(%d+)$')
    local job = prefix .. ':job:' .. job_id
    if rank and redis.call('EXISTS', job) == 1 then
      local current = tonumber(redis.call('HGET', job, 'delivery_status_rank') or '-1')
      if tonumber(rank) >= current then
        redis.call('HSET', job, 'delivery_status', status, 'delivery_status_at', at,
          'delivery_status_rank', rank)
        log_event(job, at, 'delivery_status', status)
      end
    end
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    matched = matched + 1
  end
end
return {matched, #old}
