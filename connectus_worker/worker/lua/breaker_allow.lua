--! include lib_breaker.lua
-- May a send go? It is held back while any scope covering it is open.
-- KEYS: index, then (state, probes) for each covering scope that is not closed.
-- ARGV: now|'', max_probes, lease_ms, probe_id, then each scope's name.
-- Answers {allowed 0|1, retry_in_ms, state, scope, reason, {probed scopes}, {half-opened}}:
-- state is 'open' or 'half_open' (the blocking scope's) when refused; 'half_open' when
-- allowed as a probe of the scopes listed; 'closed' when none of them holds it back.
local now = now_ms(ARGV[1])
local n = (#KEYS - 1) / 2
local max_probes, lease = tonumber(ARGV[2]), tonumber(ARGV[3])

-- An open scope whose time is not up refuses; the longest wait answers.
local wait, blocker, reason = 0, '', ''
for i = 1, n do
  local key = KEYS[2 * i]
  if redis.call('HGET', key, 'state') == 'open' then
    local left = tonumber(redis.call('HGET', key, 'open_until')) - now
    if left > wait then
      wait, blocker, reason = left, ARGV[4 + i], redis.call('HGET', key, 'reason') or ''
    end
  end
end
if blocker ~= '' then return {0, wait, 'open', blocker, reason, {}, {}} end

-- The others are due or half-open: this send is a probe of each, if each has a slot.
local probed, changed = {}, {}
for i = 1, n do
  local key, probes, name = KEYS[2 * i], KEYS[2 * i + 1], ARGV[4 + i]
  local st = redis.call('HGET', key, 'state')
  if st == 'open' then
    redis.call('HSET', key, 'state', 'half_open', 'since', now, 'successes', 0)
    changed[#changed + 1] = name
    st = 'half_open'
  end
  if st == 'half_open' then
    redis.call('ZREMRANGEBYSCORE', probes, '-inf', now)
    if redis.call('ZCARD', probes) < max_probes then
      redis.call('ZADD', probes, now + lease, ARGV[4])
      redis.call('PEXPIRE', probes, lease)
      probed[#probed + 1] = name
    else
      -- Probes are out: ask again when the oldest lease ends at the latest.
      local first = redis.call('ZRANGE', probes, 0, 0, 'WITHSCORES')
      local left = math.max(1, tonumber(first[2]) - now)
      if left > wait then
        wait, blocker, reason = left, name, redis.call('HGET', key, 'reason') or ''
      end
    end
  end
end
if blocker ~= '' then
  for i = 1, n do redis.call('ZREM', KEYS[2 * i + 1], ARGV[4]) end
  return {0, wait, 'half_open', blocker, reason, {}, changed}
end
if #probed > 0 then return {1, 0, 'half_open', probed[1], '', probed, changed} end
return {1, 0, 'closed', '', '', {}, changed}
