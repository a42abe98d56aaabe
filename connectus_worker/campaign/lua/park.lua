-- Holds a message met while the campaign can't send, unless the campaign runs
-- again by the time it arrives (then it is queued at once).
-- KEYS: campaign, parked, queue list, queue msgs
-- ARGV: member, message id, data
-- Answers 'parked', or 'queued' when the campaign runs (or is gone) by now.

local st = redis.call('HGET', KEYS[1], 'state')
if st == 'scheduled' or st == 'paused' or st == 'window' or st == 'late' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  return 'parked'
end
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
redis.call('RPUSH', KEYS[3], ARGV[2])
return 'queued'
