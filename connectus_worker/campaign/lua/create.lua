-- Commits a campaign whose chunks are already written: record, list entry,
-- active set and idempotency key together.
-- KEYS: campaign, campaigns zset, active set, idempotency key ('' = none)
-- ARGV: campaign_id, now_ms, ttl_s, fingerprint, field/value pairs...
-- Answers {'created'|'duplicate'|'conflict', campaign id}.

if KEYS[4] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then
    local fp = redis.call('HGET', string.gsub(KEYS[1], '[^:]+$', existing), 'fingerprint')
    if fp and fp ~= ARGV[4] then return {'conflict', existing} end
    return {'duplicate', existing}
  end
  redis.call('SET', KEYS[4], ARGV[1], 'EX', tonumber(ARGV[3]))
end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[4], unpack(ARGV, 5, #ARGV))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return {'created', ARGV[1]}
