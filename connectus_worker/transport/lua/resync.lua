-- Put back in the queue every id of this worker's acks set that the process
-- no longer holds: what a fetch whose answer was lost moved there (the fetch
-- ran, Redis died or the connection broke before the answer arrived). Those
-- ids would otherwise wait in the acks set of a live worker, where Dramatiq's
-- maintenance never looks (it requeues the acks of dead workers only).
-- KEYS: acks set, queue list, payload hash. ARGV: the ids the process holds.
-- Answers how many went back.

local kept = {}
for i = 1, #ARGV do
  kept[ARGV[i]] = true
end
local back = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not kept[id] then
    redis.call('SREM', KEYS[1], id)
    if redis.call('HEXISTS', KEYS[3], id) == 1 then
      redis.call('LPUSH', KEYS[2], id)
      back = back + 1
    end
  end
end
return back
