--! include lib_breaker.lua
-- An operator closes a scope (connectus breaker --close): its state, probes and index
-- entry go. KEYS: index, state, probes.  ARGV: scope.  Answers the state it had.
local st = redis.call('HGET', KEYS[2], 'state') or 'closed'
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HDEL', KEYS[1], ARGV[1])
return st
