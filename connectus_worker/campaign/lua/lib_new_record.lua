-- Fragment: a campaign recipient's job record made by a script (claim_bulk.lua
-- in connectus_worker/lua, control.lua here): the fields every record has, its first event,
-- then 'extra' (field/value pairs: its state first, then what goes with it).
-- ttl: the job TTL (s). digest: the recipient's keyed digest for the search
-- index (connectus_worker.ledger.lookup; '' = not indexed).
-- Defines: new_record(job, id, cid, index, kind, queue, dst, now, ttl, extra, digest).
--! include ../../ledger/lua/lib_events.lua
--! include ../../ledger/lua/lib_index.lua

local function new_record(job, id, cid, index, kind, queue, dst, now, ttl, extra, digest)
  local fields = event_pairs({'job_id', id, 'kind', kind, 'queue', queue,
    'idempotency_key', 'campaign:' .. cid .. ':' .. index, 'dst', dst, 'created_at', now,
    'updated_at', now, 'campaign', cid}, 0, now, extra[2], 'campaign ' .. cid)
  for i = 1, #extra do fields[#fields + 1] = extra[i] end
  redis.call('HSET', job, unpack(fields))
  redis.call('EXPIRE', job, ttl)
  if digest and digest ~= '' then
    index_job(string.sub(job, 1, string.find(job, ':job:', 1, true) - 1) .. ':find:dst:' .. digest,
      id, now, ttl)
  end
end
