-- An incoming SMS webhook: dedupe, opt-out (STOP) and stream entry, atomically.
-- KEYS: seen marker, stream, opt-out set
-- ARGV: id_sms, now_ms, seen ttl (s), maxlen, opt_out (1/0), src, dst, provider,
--       content, content_binary, request_id
-- Answers {'duplicate', 0, ''} or {'recorded', newly opted out (1/0), stream id}.

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then return {'duplicate', 0, ''} end
local added = 0
if ARGV[5] == '1' then added = redis.call('SADD', KEYS[3], ARGV[6]) end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'v', '1',
  'kind', 'sms_incoming', 'id_sms', ARGV[1], 'src_number', ARGV[6], 'dst_number', ARGV[7],
  'src_provider', ARGV[8], 'sms_content', ARGV[9], 'sms_content_binary', ARGV[10],
  'opt_out', ARGV[5], 'received_at', ARGV[2], 'request_id', ARGV[11])
return {'recorded', added, id}
