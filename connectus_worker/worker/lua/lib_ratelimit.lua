-- The shared token bucket of worker/ratelimit.py: the library (functions only).
-- worker/ratelimit.py puts it in front of ratelimit_acquire.lua and
-- ratelimit_throttled.lua (the entry chunks), and admit.lua (worker/pipeline.py) in front
-- of the ledger's claim. Times are epoch ms, rates tokens/s.
--
-- A bucket hash holds:
--   tokens, ts   tokens valid at ts (ms); ts in the future = blocked (Retry-After)
--   rate         the effective rate at the last write (for status; recomputed)
--   base, since  after a congestion decision: the rate it set and when growth
--                starts; the rate then climbs as a cubic back to the configured
--                one in recovery_ms (none = the configured rate)
--   n, t, at     exponentially decayed counts (time constant window_ms) of
--                tokens granted and throttles reported, decayed to 'at'
--   m0           when that measurement started (after the last decision, or first use)
--   quiet        until then, sends are those reserved before the last decision:
--                their throttles are not counted

-- now_ms(arg): the caller's clock (ms) when given, else Redis's (TIME), so pods
-- with skewed clocks share one timeline.
local function now_ms(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

local function num(x) return string.format('%.17g', x) end

-- The rate at 'now': configured, or on its way back to it after a decision.
-- Cubic from 'base' (flat first: it probes slowly just under the limit it
-- measured, then faster) to max_rate at since + recovery_ms.
local function rate_at(base, since, now, max_rate, recovery_ms)
  if base == nil then return max_rate end
  if now <= since then return math.min(base, max_rate) end
  local x = (now - since) / recovery_ms
  if x >= 1 or base >= max_rate then return max_rate end
  return base + (max_rate - base) * x * x * x
end

-- The bucket now: tokens earned up to now (none before a future ts), the rate,
-- and the decayed measurement.
local function load_bucket(bucket, now, burst, max_rate, recovery_ms, window_ms)
  local b = redis.call('HMGET', bucket, 'tokens', 'ts', 'base', 'since', 'n', 't', 'at', 'm0',
    'quiet')
  local s = {}
  s.rate = rate_at(tonumber(b[3]), tonumber(b[4]) or now, now, max_rate, recovery_ms)
  s.tokens = tonumber(b[1]) or burst
  s.ts = tonumber(b[2]) or now
  if now > s.ts then
    s.tokens = math.min(burst, s.tokens + (now - s.ts) * s.rate / 1000)
    s.ts = now
  end
  s.n, s.t = tonumber(b[5]) or 0, tonumber(b[6]) or 0
  local at = tonumber(b[7]) or now
  if now > at then
    local k = math.exp(-(now - at) / window_ms)
    s.n, s.t = s.n * k, s.t * k
  end
  s.m0 = tonumber(b[8]) or now
  s.quiet = tonumber(b[9]) or 0
  return s
end

local function store_bucket(bucket, now, s, ttl)
  redis.call('HSET', bucket, 'tokens', num(s.tokens), 'ts', num(s.ts), 'rate', num(s.rate),
    'n', num(s.n), 't', num(s.t), 'at', num(now), 'm0', num(s.m0))
  redis.call('PEXPIRE', bucket, ttl)
end

-- Reserve one token (tokens may go negative: the caller sleeps until it is
-- earned) and count it as a request. Answers {'ok', wait_ms, rate, grant_ms}
-- | {'wait', wait_ms, rate} | {'dst', wait_ms, rate}; only 'ok' debits anything.
-- p: {max_rate, burst, max_wait, dst_count, dst_window, member, ttl, recovery_ms,
--     window_ms}
local function take(bucket, dst, now, p)
  local s = load_bucket(bucket, now, p[2], p[1], p[8], p[9])
  if dst ~= '' then
    redis.call('ZREMRANGEBYSCORE', dst, '-inf', now - p[5])
    if redis.call('ZCARD', dst) >= p[4] then
      local oldest = redis.call('ZRANGE', dst, 0, 0, 'WITHSCORES')
      return {'dst', num(tonumber(oldest[2]) + p[5] - now), num(s.rate)}
    end
  end
  local wait = (s.ts - now) + math.max(0, 1 - s.tokens) * 1000 / s.rate
  if wait > p[3] then return {'wait', num(wait), num(s.rate)} end
  s.tokens = s.tokens - 1
  s.n = s.n + 1
  store_bucket(bucket, now, s, p[7])
  if dst ~= '' then
    redis.call('ZADD', dst, num(now + wait), p[6])
    redis.call('PEXPIRE', dst, math.ceil(p[5] + wait))
  end
  return {'ok', num(wait), num(s.rate), num(now + wait)}
end

-- One throttle answer (429 / ESME_RTHROTTLED). It is the provider's limit, not
-- noise, when throttles are more than 'threshold' of the recent requests (and
-- at least min_throttles of them, and the measurement at least half a window
-- old, so that the accepted rate is measured over enough time).
-- Then: the rate becomes (1 - margin) x the accepted rate measured over the
-- window (never above the current rate, never below min_rate), the burst is
-- drained, Retry-After blocks the bucket, growth restarts after the block, and
-- the measurement starts afresh. Otherwise only the count moves: the caller's
-- own retry still waits its Retry-After.
-- p: {max_rate, burst, min_rate, threshold, min_throttles, margin, block_ms, ttl,
--     recovery_ms, window_ms}.  Answers {rate, blocked_until_ms, decided 0|1}.
local function throttled(bucket, now, p)
  local s = load_bucket(bucket, now, p[2], p[1], p[9], p[10])
  local window_ms = p[10]
  if now < s.quiet then
    -- A send reserved at the old rate, before the last decision: already judged.
    return {num(s.rate), num(s.ts), 0}
  end
  s.t = s.t + 1
  local decided = 0
  -- Tokens granted but not yet used (negative tokens: senders sleeping until
  -- their turn) are not requests yet: no answer can have come back for them.
  local sent = math.max(0, s.n - math.max(0, -s.tokens))
  if s.t >= p[5] and s.t > p[4] * sent and now - math.max(s.m0, s.quiet) >= window_ms / 2 then
    -- The rate sent: the decayed sum of a steady flow r over the time since m0
    -- is r x window x (1 - e^(-elapsed/window)); divide by that to get r (never
    -- above the bucket's rate). The provider accepted the share not throttled.
    local span = window_ms * (1 - math.exp(-(now - s.m0) / window_ms))
    local rate_sent = math.min(s.rate, s.n * 1000 / span)
    local accepted = rate_sent * (1 - math.min(1, s.t / math.max(1, sent)))
    -- At most halved by one verdict: a half-window measurement is noisy, and
    -- the next verdict comes a half window later if the rate is still too high.
    local base = math.max(p[3], s.rate / 2, math.min(s.rate, accepted) * (1 - p[6]))
    -- The sends already reserved (negative tokens) go out at the old rate
    -- whatever is decided now; their throttles are this decision's, not the
    -- next: their throttles are not counted until they are out (plus 250 ms
    -- for their answers). Tokens granted from now on are sent after them.
    local quiet = now + math.max(0, -s.tokens) * 1000 / s.rate + 250
    s.rate = base
    if s.tokens > 0 then s.tokens = 0 end
    s.ts = math.max(s.ts, now + p[7])
    s.n, s.t, s.m0 = 0, 0, now
    redis.call('HSET', bucket, 'base', num(base), 'since', num(s.ts), 'quiet', num(quiet))
    decided = 1
  end
  store_bucket(bucket, now, s, p[8])
  return {num(s.rate), num(s.ts), decided}
end
