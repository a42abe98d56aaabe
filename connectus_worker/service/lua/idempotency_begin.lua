-- One round trip: a stored answer wins; else take the marker; else someone holds it.
-- KEYS: answer, lock.  ARGV: lock token, lock ttl (ms)
-- Answers {'stored', answer} | {'locked', ''} | {'busy', ''}.

local stored = redis.call('GET', KEYS[1])
if stored then return {'stored', stored} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'locked', ''} end
return {'busy', ''}
