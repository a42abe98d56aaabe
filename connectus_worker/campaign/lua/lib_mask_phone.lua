-- Fragment: the mask of a phone number as connectus_worker.logging.redaction.mask_phone makes it
-- (kept equal by tests/unit/test_campaign_bulk_claim.py): country prefix and
-- last 3 digits. Defines: mask_phone(text).

local function mask_phone(text)
  local digits = string.gsub(text, '%D', '')
  if #digits < 8 then return '***' end
  local head = math.max(0, math.min(3, #digits - 8))
  local plus = string.find(text, '^%s*%+') and '+' or ''
  return plus .. string.sub(digits, 1, head) .. string.rep('*', #digits - 3 - head)
    .. string.sub(digits, -3)
end
