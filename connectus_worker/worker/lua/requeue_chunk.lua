-- Moves one dead-lettered v1 bulk chunk message back to its queue.
-- KEYS: dead letters, dead-letter msgs, dead-letter reasons, queue list, queue msgs
-- ARGV: member, message id, message data
-- Answers 1 when moved, 0 when another process moved (or purged) it first.

if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[2], ARGV[3])
redis.call('RPUSH', KEYS[4], ARGV[2])
return 1
