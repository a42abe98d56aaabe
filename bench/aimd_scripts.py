"""The Lua of the AIMD limiter as it was before issue 18, kept as the bench's baseline.

Verbatim from the old ``worker/ratelimit_scripts.py`` (moved, not rewritten):
one token bucket per hash, times in epoch ms; a throttle halves the rate (at
most once per cooldown), each second of success adds ``increase_per_s`` back.
Used only by :mod:`bench.aimd_limiter`; the product uses ``worker/ratelimit.lua``.
"""

from __future__ import annotations

# now_ms(arg): the caller's clock (ms) when given, else Redis's (TIME), so pods
# with skewed clocks share one timeline. refill: earn tokens up to now at the
# current rate; a ts in the future (a Retry-After block) earns nothing until then.
LIB = """
local function now_ms(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local function num(x) return string.format('%.17g', x) end
local function refill(bucket, now, burst, max_rate)
  local b = redis.call('HMGET', bucket, 'tokens', 'ts', 'rate')
  local rate = tonumber(b[3]) or max_rate
  if rate > max_rate then rate = max_rate end
  local tokens = tonumber(b[1]) or burst
  local ts = tonumber(b[2]) or now
  if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
    ts = now
  end
  return tokens, ts, rate
end
-- Reserve one token (tokens may go negative: the caller sleeps until it is
-- earned). Answers {'ok', wait_ms, rate, grant_ms} | {'wait', wait_ms, rate}
-- | {'dst', wait_ms, rate}; only 'ok' debits anything.
local function take(bucket, dst, now, max_rate, burst, max_wait, dst_count, dst_window,
                    member, ttl)
  local tokens, ts, rate = refill(bucket, now, burst, max_rate)
  if dst ~= '' then
    redis.call('ZREMRANGEBYSCORE', dst, '-inf', now - dst_window)
    if redis.call('ZCARD', dst) >= dst_count then
      local oldest = redis.call('ZRANGE', dst, 0, 0, 'WITHSCORES')
      return {'dst', num(tonumber(oldest[2]) + dst_window - now), num(rate)}
    end
  end
  local wait = (ts - now) + math.max(0, 1 - tokens) * 1000 / rate
  if wait > max_wait then return {'wait', num(wait), num(rate)} end
  redis.call('HSET', bucket, 'tokens', num(tokens - 1), 'ts', num(ts), 'rate', num(rate))
  redis.call('PEXPIRE', bucket, ttl)
  if dst ~= '' then
    redis.call('ZADD', dst, num(now + wait), member)
    redis.call('PEXPIRE', dst, math.ceil(dst_window + wait))
  end
  return {'ok', num(wait), num(rate), num(now + wait)}
end
"""

# KEYS: bucket, dst zset or ''.  ARGV: now_ms|'', max_rate, burst, max_wait_ms,
#   dst_count, dst_window_ms, member, ttl_ms.  Answers as take().
ACQUIRE = (
    LIB
    + """
return take(KEYS[1], KEYS[2], now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8])
"""
)

# KEYS: bucket.  ARGV: now_ms|'', max_rate, burst, min_rate, factor, block_ms,
#   cooldown_ms, ttl_ms.  Answers {rate, blocked_until_ms, decreased 0|1}
THROTTLED = (
    LIB
    + """
local now = now_ms(ARGV[1])
local tokens, ts, rate = refill(KEYS[1], now, tonumber(ARGV[3]), tonumber(ARGV[2]))
local decreased = 0
local dec_at = tonumber(redis.call('HGET', KEYS[1], 'dec_at') or '-1e300')
if now - dec_at >= tonumber(ARGV[7]) then
  rate = math.max(tonumber(ARGV[4]), rate * tonumber(ARGV[5]))
  dec_at = now
  decreased = 1
end
if tokens > 0 then tokens = 0 end
ts = math.max(ts, now + tonumber(ARGV[6]))
redis.call('HSET', KEYS[1], 'tokens', num(tokens), 'ts', num(ts), 'rate', num(rate),
  'dec_at', num(dec_at), 'inc_at', num(ts))
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return {num(rate), num(ts), decreased}
"""
)

# KEYS: bucket.  ARGV: now_ms|'', max_rate, burst, increase_per_s, ttl_ms.  Answers rate.
SUCCEEDED = (
    LIB
    + """
local now = now_ms(ARGV[1])
local max_rate = tonumber(ARGV[2])
local tokens, ts, rate = refill(KEYS[1], now, tonumber(ARGV[3]), max_rate)
if rate >= max_rate then return num(rate) end
local inc_at = tonumber(redis.call('HGET', KEYS[1], 'inc_at') or num(now))
if now <= inc_at then return num(rate) end
-- Per second of success: a lone success after a long silence adds one second's worth.
local dt = math.min(now - inc_at, 1000)
rate = math.min(max_rate, rate + tonumber(ARGV[4]) * dt / 1000)
redis.call('HSET', KEYS[1], 'tokens', num(tokens), 'ts', num(ts), 'rate', num(rate),
  'inc_at', num(now))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return num(rate)
"""
)
