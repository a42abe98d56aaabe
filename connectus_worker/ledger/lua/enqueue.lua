-- Creates a job record and enqueues its Dramatiq message in one step (or
-- schedules it), unless its idempotency key is taken. The two writes are those
-- of RedisBroker.enqueue ({ns}:{queue} list of ids + {ns}:{queue}.msgs hash),
-- so that creating the record and enqueuing can never be separated by a crash.
-- The record's first event and its search index entries are written with it. A new
-- job whose delivery status is polled (connectus_worker/ledger/status_watch.py) joins the watch set
-- here too, NX: no second round trip after the enqueue.
-- KEYS: idem, job, queue list, queue msgs, schedule zset, schedule msgs, watch zset,
--       then the search indexes to add the job to (connectus_worker.ledger.lookup; any number)
-- ARGV: job_id, fingerprint, ttl_s, mode (queue|schedule), due_ms,
--       redis_message_id, message data, key prefix,
--       watch due ms ('' = not watched), field/value pairs...
--       (among them created_at and state)
-- Answers {'created'|'duplicate'|'conflict', job_id}.
--! include lib_events.lua
--! include lib_index.lua

local ttl = tonumber(ARGV[3])
-- Take the key if it is free (the common case: one command, not GET then SET).
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ttl) then
  local existing = redis.call('GET', KEYS[1])
  local fp = redis.call('HGET', ARGV[8] .. ':job:' .. existing, 'fingerprint')
  if fp and fp ~= ARGV[2] then return {'conflict', existing} end
  return {'duplicate', existing}
end
local fields = {'fingerprint', ARGV[2]}
local created, state = 0, ARGV[4]
for i = 10, #ARGV - 1, 2 do
  if ARGV[i] == 'created_at' then created = ARGV[i + 1] end
  if ARGV[i] == 'state' then state = ARGV[i + 1] end
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
redis.call('HSET', KEYS[2], unpack(event_pairs(fields, 0, created, state, '')))
redis.call('EXPIRE', KEYS[2], ttl)
for i = 8, #KEYS do index_job(KEYS[i], ARGV[1], created, ttl) end
if ARGV[4] == 'schedule' then
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
  redis.call('HSET', KEYS[6], ARGV[1], ARGV[7])
else
  redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
  redis.call('RPUSH', KEYS[3], ARGV[6])
end
if ARGV[9] ~= '' then redis.call('ZADD', KEYS[7], 'NX', ARGV[9], ARGV[1]) end
return {'created', ARGV[1]}
