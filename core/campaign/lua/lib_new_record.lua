-- Fragment: a campaign recipient's job record made by a script (claim_bulk.lua
-- in core/lua, control.lua here): the fields every record has, then 'extra'
-- (field/value pairs: its state and what goes with it). ttl: the job TTL (s).
-- Defines: new_record(job, id, cid, index, kind, queue, dst, now, ttl, extra).

local function new_record(job, id, cid, index, kind, queue, dst, now, ttl, extra)
  redis.call('HSET', job, 'job_id', id, 'kind', kind, 'queue', queue,
    'idempotency_key', 'campaign:' .. cid .. ':' .. index, 'dst', dst, 'created_at', now,
    'updated_at', now, 'campaign', cid, unpack(extra))
  redis.call('EXPIRE', job, ttl)
end
