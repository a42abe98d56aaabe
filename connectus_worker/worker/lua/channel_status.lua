-- An e-mail or WhatsApp job's polled status and e-mail events: job record update
-- and one stream entry per change, atomically (connectus_worker.worker.channel_status).
-- KEYS: job hash, events stream
-- ARGV: now_ms, maxlen, status ('' for none), rank, channel (job kind), provider_id,
--       then triples (record field, event name, Connectus's timestamp)...
-- Answers {1 if the status changed else 0, each event name new to the job...}.

if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local h = redis.call('HMGET', KEYS[1], 'job_id', 'correlation_id', 'delivery_status',
  'delivery_status_rank', 'campaign')
local job_id, correlation, campaign = h[1] or '', h[2] or '', h[5] or ''
local answer = {0}
if ARGV[3] ~= '' and ARGV[3] ~= h[3] and tonumber(ARGV[4]) >= tonumber(h[4] or '-1') then
  redis.call('HSET', KEYS[1], 'delivery_status', ARGV[3], 'delivery_status_at', ARGV[1],
    'delivery_status_rank', ARGV[4])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'v', '1',
    'kind', 'delivery_status', 'channel', ARGV[5], 'provider_id', ARGV[6], 'status', ARGV[3],
    'job_id', job_id, 'correlation_id', correlation, 'campaign', campaign,
    'received_at', ARGV[1])
  answer[1] = 1
end
for i = 7, #ARGV - 2, 3 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 2]) == 1 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'v', '1',
      'kind', 'email_event', 'channel', ARGV[5], 'provider_id', ARGV[6], 'event', ARGV[i + 1],
      'timestamp', ARGV[i + 2], 'job_id', job_id, 'correlation_id', correlation,
      'campaign', campaign, 'received_at', ARGV[1])
    answer[#answer + 1] = ARGV[i + 1]
  end
end
return answer
