-- release.lua for a v1 bulk SMS chunk: O(1), whatever its size. Its rows are
-- counted 'queued' and its message queued; their job records are made by the
-- chunk's first claim (connectus_worker/ledger/lua/claim_bulk.lua), which also reads the opt-out
-- list. Why: Redis's one thread is what a bulk campaign saturates, and records
-- made here were read and written again by the claim a moment later.
-- KEYS: campaign, counts, queue list, queue msgs
-- ARGV: expected cursor, now_ms, ttl_s, chunk message id, chunk message data, rows
-- Answers 1 when released, 0 when the cursor moved or the campaign is not running.

if redis.call('HGET', KEYS[1], 'state') ~= 'running'
   or redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
redis.call('RPUSH', KEYS[3], ARGV[4])
redis.call('HINCRBY', KEYS[2], 'queued', tonumber(ARGV[6]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'cursor', tonumber(ARGV[1]) + 1, 'updated_at', ARGV[2])
return 1
