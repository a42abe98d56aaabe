--! include lib_ratelimit.lua
-- KEYS: bucket.  ARGV: now_ms|'', max_rate, burst, min_rate, threshold,
--   min_throttles, margin, block_ms, ttl_ms, recovery_ms, window_ms.
-- Answers {rate, blocked_until_ms, decided 0|1} (throttled() in worker/lua/lib_ratelimit.lua).
return throttled(KEYS[1], now_ms(ARGV[1]), {tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]),
  tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])})
