-- Fragment: the search indexes, read by connectus_worker.ledger.lookup.find_jobs. Each is a sorted
-- set (recipient digest, idempotency key, correlation id -> job ids scored by
-- creation, ms) that expires with the newest of its jobs' records; entries older
-- than a record lives are dropped at each write, so a key many jobs share stays
-- bounded by the jobs of one TTL.
-- Defines: index_job(key, job_id, now_ms, ttl_s).

local function index_job(key, job_id, now, ttl)
  redis.call('ZADD', key, now, job_id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf',
    '(' .. string.format('%d', tonumber(now) - tonumber(ttl) * 1000))
  redis.call('EXPIRE', key, ttl)
end
