--[[
  debit: charges units spent beyond what was acquired (a cost known from the response).
  Never refuses: later requests wait for it.
  KEYS: two per scope: gcra state, window log.
  ARGV: units, debitId, scopeCount, then three numbers per scope: rateLimit, ratePeriodMs, windowMs.
]]
--- @include "server-now"
--- @include "gcra"

local now = serverNow()
local units = tonumber(ARGV[1])
local count = tonumber(ARGV[3])
for i = 1, count do
  local base = 3 + (i - 1) * 3
  local rateLimit, ratePeriod, windowMs = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local gcraKey, windowKey = KEYS[(i - 1) * 2 + 1], KEYS[(i - 1) * 2 + 2]
  if rateLimit > 0 then
    gcraStore(gcraKey, gcraTat(gcraKey, now) + units * ratePeriod / rateLimit, now)
  end
  if windowMs > 0 then
    redis.call('ZADD', windowKey, now, string.format('%.3f', now) .. ':' .. ARGV[2] .. ':' .. units)
    redis.call('PEXPIRE', windowKey, math.ceil(windowMs))
  end
end
return count
