-- Opt a number out of marketing, or back in, and record the change in its history.
-- KEYS: opt-out set, the number's history stream
-- ARGV: number (E.164 digits), action ('out' or 'in'), source, now_ms, history maxlen
-- Answers {changed (1/0), history entry id}. A request that changes nothing
-- (out when already out) is recorded too, with changed=0: the history says who asked.

local changed
if ARGV[2] == 'out' then
  changed = redis.call('SADD', KEYS[1], ARGV[1])
else
  changed = redis.call('SREM', KEYS[1], ARGV[1])
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
  'action', ARGV[2], 'source', ARGV[3], 'changed', changed, 'at_ms', ARGV[4])
return {changed, id}
