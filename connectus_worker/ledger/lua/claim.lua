-- Moves one job to 'sending' under a lease and a fence (see lib_claim.lua).
-- KEYS: job, unknown zset, leases zset, in-flight msgs, unknown msgs
-- ARGV: now_ms, lease_ms, worker_id, job_id, claim token, message copy
--! include lib_claim.lua

return claim(KEYS[1], ARGV[4], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[5], ARGV[6],
  KEYS[2], KEYS[3], KEYS[4], KEYS[5], {})
