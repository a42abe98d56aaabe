-- Fragment: the move of a job whose lease ran out to 'unknown' (shared by CLAIM
-- and SWEEP): it may have been sent; never resend blindly. Its in-flight message
-- copy goes with it, for the reconciler. Counted 'unknown' in the history.
-- Defines: expire(job, job_id, now, unknown, leases, inflight, unknown_msgs).
--! include lib_counts.lua
--! include lib_events.lua
--! include lib_history.lua

local function expire(job, job_id, now, unknown, leases, inflight, unknown_msgs)
  moved(job, 'sending', 'unknown')
  redis.call('HSET', job, 'state', 'unknown', 'outcome', 'ambiguous',
    'error_class', 'LeaseExpired', 'last_error', 'worker lost its lease while sending',
    'updated_at', now)
  log_event(job, now, 'unknown', 'lease expired while sending')
  count_outcome(prefix_of(job), 'unknown', now, 1, redis.call('HGET', job, 'campaign'))
  redis.call('ZADD', unknown, now, job_id)
  redis.call('ZREM', leases, job_id)
  local data = redis.call('HGET', inflight, job_id)
  if data then
    redis.call('HSET', unknown_msgs, job_id, data)
    redis.call('HDEL', inflight, job_id)
  end
end
