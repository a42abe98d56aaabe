-- Takes the status-watch entries due at now_ms and moves each to next_ms, atomically:
-- two processes polling at once never both take a job (one lookup per job per interval).
-- KEYS: watch zset.  ARGV: now_ms, next_ms, limit.  Answers the job ids taken.

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, job_id in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], job_id)
end
return due
