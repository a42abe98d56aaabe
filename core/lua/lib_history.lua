-- Fragment: outcomes per minute, read by core.history.series. One hash per hour,
-- '{prefix}:history:{hour start, epoch s}', field '<minute of the hour>:<outcome>',
-- expiring HISTORY_TTL_S after its last write (core.history.HISTORY_TTL_S, the
-- same value): at most 25 small hashes hold the last day, whatever the traffic.
-- Defines: prefix_of(job), count_outcome(prefix, state, now_ms, n).

local HISTORY_TTL_S = 93600
local function prefix_of(job)
  return string.sub(job, 1, string.find(job, ':job:', 1, true) - 1)
end
-- Counts n jobs reaching state at now_ms; states other than the three are not counted.
local function count_outcome(prefix, state, now_ms, n)
  if n == 0 or (state ~= 'sent' and state ~= 'failed' and state ~= 'unknown') then return end
  local s = math.floor(tonumber(now_ms) / 1000)
  local key = prefix .. ':history:' .. string.format('%d', s - s % 3600)
  redis.call('HINCRBY', key, math.floor((s % 3600) / 60) .. ':' .. state, n)
  redis.call('EXPIRE', key, HISTORY_TTL_S)
end
