-- Fragment: a campaign's counts by state, shared by every script that changes
-- a job's state. A job of a campaign (field ``campaign``) moves one unit between
-- the state counters of {prefix}:campaign:{id}:counts, so a campaign's counts by
-- state cost O(1) per transition instead of a scan of its jobs.
-- Defines: moved(job, old, new, c), apply_moves(), variadic(cmd, key, values),
-- campaign_key(job, c), and the table deferred_moves (nil: moves applied at once).

-- While a batch script defers them (a table, see apply_moves), moves are summed
-- per counts key and applied once at its end: 2 HINCRBY per batch and state
-- instead of per job. Within one script nothing reads the counts in between.
local deferred_moves = nil
local function campaign_key(job, c)
  return string.sub(job, 1, string.find(job, ':job:', 1, true) - 1) .. ':campaign:' .. c
end
-- c: the job's campaign as the caller already read it (false: none); nil: read here.
local function moved(job, old, new, c)
  if old == new then return end
  if c == nil then c = redis.call('HGET', job, 'campaign') end
  if not c then return end
  local counts = campaign_key(job, c) .. ':counts'
  if deferred_moves then
    local m = deferred_moves[counts]
    if not m then m = {}; deferred_moves[counts] = m end
    if old then m[old] = (m[old] or 0) - 1 end
    m[new] = (m[new] or 0) + 1
    return
  end
  if old then redis.call('HINCRBY', counts, old, -1) end
  redis.call('HINCRBY', counts, new, 1)
end
local function apply_moves()
  for counts, m in pairs(deferred_moves or {}) do
    for st, n in pairs(m) do
      if n ~= 0 then redis.call('HINCRBY', counts, st, n) end
    end
  end
  deferred_moves = nil
end
-- One variadic command for many members/fields (in slices: Lua's unpack has a
-- stack limit of a few thousand values).
local function variadic(cmd, key, values)
  for i = 1, #values, 500 do
    redis.call(cmd, key, unpack(values, i, math.min(i + 499, #values)))
  end
end
