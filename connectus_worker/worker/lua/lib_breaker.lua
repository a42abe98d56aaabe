-- Shared by the circuit breaker's scripts (worker/breaker.py). Times are epoch ms;
-- ARGV[1] is the caller's clock (tests) or '' to read Redis's, so pods share one
-- timeline.
local function now_ms(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return math.floor(tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000)
end
