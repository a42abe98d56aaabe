-- A rate-limiter token and the job's claim in one round trip (connectus_worker.worker.pipeline).
-- KEYS: job, unknown zset, leases zset, in-flight msgs, unknown msgs (claim.lua's),
--       bucket, dst zset or '' (take's).
-- ARGV: claim.lua's 6 (now_ms, lease_ms, worker_id, job_id, token, copy), then
--       take's 10 (now_ms|'', max_rate, burst, max_wait_ms, dst_count,
--       dst_window_ms, member, ttl_ms, recovery_ms, window_ms).
-- Answers {take's answer, claim's answer or {} when nothing was claimed}.
--! include lib_ratelimit.lua
--! include ../../ledger/lua/lib_claim.lua

local got = take(KEYS[6], KEYS[7], now_ms(ARGV[7]), {tonumber(ARGV[8]), tonumber(ARGV[9]),
  tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13], ARGV[14],
  tonumber(ARGV[15]), tonumber(ARGV[16])})
if got[1] ~= 'ok' or tonumber(got[2]) > 0 then return {got, {}} end
return {got, claim(KEYS[1], ARGV[4], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[5],
  ARGV[6], KEYS[2], KEYS[3], KEYS[4], KEYS[5], {})}
