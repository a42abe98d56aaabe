-- The provider-id lookup's verdict on one sent job that Connectus accepted
-- without naming it (worker/id_lookup.py). Atomic: the provider index is
-- checked and taken in the same step, so two jobs never take one record.
-- KEYS: job, id-lookup zset, id-lookup data hash.
-- ARGV: job_id, now_ms, give_up (1|0), index ttl_s, key prefix, candidate ids...
-- Answers {'found', id} | {'waiting'} | {'not_found'} | {'gone'}.
local job_id, now = ARGV[1], ARGV[2]
local h = redis.call('HMGET', KEYS[1], 'state', 'provider_id_lookup')
if h[1] ~= 'sent' or h[2] ~= 'pending' then
  -- Expired, or settled by an earlier pass: nothing to look up any more.
  redis.call('ZREM', KEYS[2], job_id)
  redis.call('HDEL', KEYS[3], job_id)
  return {'gone'}
end
for i = 6, #ARGV do
  local index = ARGV[5] .. ':provider:' .. ARGV[i]
  local owner = redis.call('GET', index)
  if not owner or owner == job_id then
    redis.call('SET', index, job_id, 'EX', tonumber(ARGV[4]))
    redis.call('HSET', KEYS[1], 'provider_id', ARGV[i], 'provider_id_lookup', 'found',
      'updated_at', now)
    redis.call('ZREM', KEYS[2], job_id)
    redis.call('HDEL', KEYS[3], job_id)
    return {'found', ARGV[i]}
  end
end
if ARGV[3] ~= '1' then return {'waiting'} end
redis.call('HSET', KEYS[1], 'provider_id_lookup', 'not_found', 'updated_at', now)
redis.call('ZREM', KEYS[2], job_id)
redis.call('HDEL', KEYS[3], job_id)
return {'not_found'}
