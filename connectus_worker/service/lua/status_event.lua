-- An SMS status webhook: dedupe, job record update and stream entry, atomically.
-- Without a job (its send not recorded yet) the status is kept as pending, the
-- highest-ranked one per message, for connectus_worker.ledger.delivery_status.PendingStatuses.
-- KEYS: seen marker, stream, pending hash, pending since zset[, job hash]
-- ARGV: id_sms, status, now_ms, seen ttl (s), maxlen, rank, job_id, request_id
-- Answers {'duplicate', 0, ''} or {'recorded', applied (1/0), stream id}.
-- An applied status is also one of the job's events (connectus_worker.ledger.lookup.job_history).
--! include ../../ledger/lua/lib_events.lua

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[4]) then return {'duplicate', 0, ''} end
local applied = 0
local correlation = ''
if #KEYS == 5 and redis.call('EXISTS', KEYS[5]) == 1 then
  local current = tonumber(redis.call('HGET', KEYS[5], 'delivery_status_rank') or '-1')
  if tonumber(ARGV[6]) >= current then
    redis.call('HSET', KEYS[5], 'delivery_status', ARGV[2], 'delivery_status_at', ARGV[3],
      'delivery_status_rank', ARGV[6])
    log_event(KEYS[5], ARGV[3], 'delivery_status', ARGV[2])
    applied = 1
  end
  correlation = redis.call('HGET', KEYS[5], 'correlation_id') or ''
elseif #KEYS == 4 then
  local kept = redis.call('HGET', KEYS[3], ARGV[1])
  if not kept or tonumber(ARGV[6]) >= tonumber(string.match(kept, '^(%-?%d+)|')) then
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[6] .. '|' .. ARGV[2] .. '|' .. ARGV[3])
    redis.call('ZADD', KEYS[4], 'NX', ARGV[3], ARGV[1])
  end
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'v', '1',
  'kind', 'sms_status', 'id_sms', ARGV[1], 'status', ARGV[2], 'job_id', ARGV[7],
  'correlation_id', correlation, 'received_at', ARGV[3], 'request_id', ARGV[8])
return {'recorded', applied, id}
