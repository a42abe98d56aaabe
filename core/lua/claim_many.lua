-- Claims many jobs in one round trip (a v1 bulk of up to 1,000); one answer
-- per job, as claim.lua's. No in-flight copy: the bulk's own message is the copy.
-- Campaign counts and leases are written once for the batch, at the end.
-- KEYS: unknown zset, leases zset, in-flight msgs, unknown msgs
-- ARGV: now_ms, lease_ms, worker_id, claim token, key prefix, job ids...
--! include lib_claim.lua

deferred_moves, deferred_leases = {}, {}
local answers, campaign_states = {}, {}
local now, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 6, #ARGV do
  local id = ARGV[i]
  answers[#answers + 1] = claim(ARGV[5] .. ':job:' .. id, id, now, lease_ms, ARGV[3], ARGV[4],
    '', KEYS[1], KEYS[2], KEYS[3], KEYS[4], campaign_states)
end
apply_moves()
variadic('ZADD', KEYS[2], deferred_leases)
return answers
