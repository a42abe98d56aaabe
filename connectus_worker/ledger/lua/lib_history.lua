-- Fragment: outcomes per minute, read by connectus_worker.ledger.history. One hash per hour,
-- '{prefix}:history:{hour start, epoch s}', field '<minute of the hour>' =
-- '<sent>,<failed>,<unknown>', expiring HISTORY_TTL_S after its last write
-- (connectus_worker.ledger.history.HISTORY_TTL_S, the same value): at most 25 hashes of 60 fields
-- hold the last day, whatever the traffic. One field per minute, not per outcome:
-- a day's read parses a third as many (the script makes the update atomic).
-- A campaign's job is also counted in '{prefix}:campaign:{cid}:history', field
-- '<epoch minute>', which lives as long as the campaign's record (its chart).
-- Defines: prefix_of(job), count_outcome(prefix, state, now_ms, n, campaign).

local HISTORY_TTL_S = 93600
local HISTORY_COLUMN = {sent = 1, failed = 2, unknown = 3}
local function prefix_of(job)
  return string.sub(job, 1, string.find(job, ':job:', 1, true) - 1)
end
local function bump_minute(key, field, column, n)
  local counts, j = {0, 0, 0}, 1
  for x in string.gmatch(redis.call('HGET', key, field) or '', '%d+') do
    counts[j] = tonumber(x)
    j = j + 1
  end
  counts[column] = counts[column] + n
  redis.call('HSET', key, field, string.format('%d,%d,%d', counts[1], counts[2], counts[3]))
end
-- Counts n jobs reaching state at now_ms (of campaign, if not nil/false); states
-- other than the three are not counted.
local function count_outcome(prefix, state, now_ms, n, campaign)
  local column = HISTORY_COLUMN[state or '']
  if n == 0 or not column then return end
  local s = math.floor(tonumber(now_ms) / 1000)
  local key = prefix .. ':history:' .. string.format('%d', s - s % 3600)
  bump_minute(key, string.format('%d', math.floor((s % 3600) / 60)), column, n)
  redis.call('EXPIRE', key, HISTORY_TTL_S)
  if campaign then
    local record = prefix .. ':campaign:' .. campaign
    local chart = record .. ':history'
    bump_minute(chart, string.format('%d', math.floor(s / 60)), column, n)
    local ttl = redis.call('TTL', record)
    redis.call('EXPIRE', chart, ttl > 0 and ttl or HISTORY_TTL_S)
  end
end
