-- Fragment: the claim of one job, shared by claim.lua,
-- claim_bulk.lua and worker/lua/admit.lua.
-- Defines: claim(job, job_id, now, lease_ms, worker, token, copy, unknown, leases,
--   inflight, unknown_msgs, campaign_states), and the table deferred_leases.
-- Answers: {'ok', fence, attempts} | {'done', state} | {'busy', lease_until}
--          | {'unknown'} | {'expired'} | {'missing'} | {'paused', campaign state}
-- The claim token makes a retried claim whose first answer was lost (a Redis
-- blip) recognise itself instead of finding the job busy. A job of a campaign
-- is claimed only while its campaign runs: cancelled -> the job is cancelled
-- here, in the same step, so that cancelling stops every pod at its next claim;
-- paused, outside its window or late -> 'paused' (the caller parks the message).
--! include lib_expire.lua

-- While CLAIM_MANY defers them (a table), leases taken are collected as
-- score/member pairs and added with one ZADD at its end.
local deferred_leases = nil
local function claim(job, job_id, now, lease_ms, worker, token, copy, unknown, leases,
                     inflight, unknown_msgs, campaign_states)
  local h = redis.call('HMGET', job, 'state', 'campaign', 'fence', 'attempts', 'claim_token',
    'lease_until')
  local st, c = h[1], h[2]
  if not st then return {'missing'} end
  if st == 'sent' or st == 'failed' or st == 'cancelled' then return {'done', st} end
  if st == 'unknown' then return {'unknown'} end
  if st == 'sending' then
    if h[5] == token then return {'ok', h[3], h[4]} end
    if now < tonumber(h[6] or '0') then return {'busy', h[6]} end
    expire(job, job_id, now, unknown, leases, inflight, unknown_msgs)
    return {'expired'}
  end
  if c then
    -- One read of the campaign's state per call (a bulk claims 1,000 of its jobs).
    local cst = campaign_states[c]
    if cst == nil then
      cst = redis.call('HGET', campaign_key(job, c), 'state') or false
      campaign_states[c] = cst
    end
    if cst == 'cancelled' then
      moved(job, st, 'cancelled', c)
      redis.call('HSET', job, 'state', 'cancelled', 'outcome', 'cancelled', 'updated_at', now)
      return {'done', 'cancelled'}
    end
    if cst and cst ~= 'running' and cst ~= 'finished' then return {'paused', cst} end
  end
  moved(job, st, 'sending', c)
  local fence = tonumber(h[3] or '0') + 1
  local attempts = tonumber(h[4] or '0') + 1
  local lease_until = now + lease_ms
  redis.call('HSET', job, 'state', 'sending', 'fence', fence, 'attempts', attempts,
    'lease_until', lease_until, 'worker', worker, 'claim_token', token, 'updated_at', now)
  if deferred_leases then
    deferred_leases[#deferred_leases + 1] = lease_until
    deferred_leases[#deferred_leases + 1] = job_id
  else
    redis.call('ZADD', leases, lease_until, job_id)
  end
  if copy ~= '' then redis.call('HSET', inflight, job_id, copy) end
  return {'ok', fence, attempts}
end
