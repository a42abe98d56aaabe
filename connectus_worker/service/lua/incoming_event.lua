-- An incoming SMS webhook: dedupe, opt-out (STOP) or opt-in (ALTA) with its history
-- entry, and stream entry, atomically.
-- KEYS: seen marker, stream, opt-out set, the sender's opt-out history stream
-- ARGV: id_sms, now_ms, seen ttl (s), maxlen, opt flag ('1' out, '2' back in, '0' neither),
--       src, dst, provider, content, content_binary, request_id, history maxlen
-- Answers {'duplicate', 0, ''} or {'recorded', number's opt-out changed (1/0), stream id}.

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then return {'duplicate', 0, ''} end
local changed = 0
local action = nil
if ARGV[5] == '1' then
  changed = redis.call('SADD', KEYS[3], ARGV[6])
  action = 'out'
elseif ARGV[5] == '2' then
  changed = redis.call('SREM', KEYS[3], ARGV[6])
  action = 'in'
end
if action then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[12], '*', 'action', action,
    'source', 'sms:' .. ARGV[1], 'changed', changed, 'at_ms', ARGV[2])
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'v', '1',
  'kind', 'sms_incoming', 'id_sms', ARGV[1], 'src_number', ARGV[6], 'dst_number', ARGV[7],
  'src_provider', ARGV[8], 'sms_content', ARGV[9], 'sms_content_binary', ARGV[10],
  'opt_out', ARGV[5] == '1' and '1' or '0', 'opt_in', ARGV[5] == '2' and '1' or '0',
  'received_at', ARGV[2], 'request_id', ARGV[11])
return {'recorded', changed, id}
