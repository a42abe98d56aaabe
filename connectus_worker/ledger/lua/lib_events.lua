-- Fragment: a job's event ring, read by connectus_worker.ledger.lookup.job_history. The last
-- EVENTS_KEPT transitions are fields of the record itself ('ev:<slot>' =
-- '<seq>|<at_ms>|<event>|<detail>', 'ev_n' = how many were written), so they
-- cost no key of their own, expire with the record and stay bounded. A detail
-- is never content or an OTP: an error's class and text, a status, an attempt.
-- Defines: EVENTS_KEPT, event_pairs(t, n, at, event, detail), log_event(job, at, event, detail).

local EVENTS_KEPT = 16
local function event_value(n, at, event, detail)
  return n .. '|' .. string.format('%d', tonumber(at) or 0) .. '|' .. event .. '|'
    .. string.sub(detail or '', 1, 200)
end
-- Appends the field/value pairs of event n (the record's 'ev_n' before it) to t,
-- for a script that writes the record anyway: no command of its own.
local function event_pairs(t, n, at, event, detail)
  n = tonumber(n) or 0
  t[#t + 1] = 'ev_n'
  t[#t + 1] = n + 1
  t[#t + 1] = 'ev:' .. (n % EVENTS_KEPT)
  t[#t + 1] = event_value(n, at, event, detail)
  return t
end
-- The event on its own (two commands); only for a record that exists.
local function log_event(job, at, event, detail)
  local n = redis.call('HINCRBY', job, 'ev_n', 1) - 1
  redis.call('HSET', job, 'ev:' .. (n % EVENTS_KEPT), event_value(n, at, event, detail))
end
