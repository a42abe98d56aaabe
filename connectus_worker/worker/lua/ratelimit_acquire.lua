--! include lib_ratelimit.lua
-- KEYS: bucket, dst zset or ''.  ARGV: now_ms|'', max_rate, burst, max_wait_ms,
--   dst_count, dst_window_ms, member, ttl_ms, recovery_ms, window_ms.
-- Answers as take() (worker/lua/lib_ratelimit.lua).
return take(KEYS[1], KEYS[2], now_ms(ARGV[1]), {tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8],
  tonumber(ARGV[9]), tonumber(ARGV[10])})
