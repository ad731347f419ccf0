--[[
  acquire: checks every scope of one request and, only if all pass, takes from each.
  Atomic (one script), one round trip, on the server's clock.

  KEYS: three per scope, in scope order: gcra state, window log, concurrency leases.
  ARGV: cost, leaseId, leaseTtlMs, scopeCount, then eight numbers per scope:
        units (cost units this scope counts), rateLimit, ratePeriodMs, rateBurst,
        windowLimit, windowMs, concurrency (0 = none), reserved.
  Returns: { allowed, refusedIndex (1-based, 0 when allowed), retryAfterMs (string),
             reason (0 none, 1 rate, 2 concurrency, 3 impossible),
             then per scope: rateRemaining, rateResetMs, windowRemaining, windowResetMs }
             (numbers as strings, -1 where the scope has no such limit).
]]
--- @include "server-now"
--- @include "gcra"

local now = serverNow()
local cost = tonumber(ARGV[1])
local leaseId = ARGV[2]
local leaseTtl = tonumber(ARGV[3])
local count = tonumber(ARGV[4])

local refusedIndex, retryAfter, reason = 0, 0, 0
local views = {}
local newTat = {}
local function refuse(i, wait, why)
  if reason == 3 then return end
  if refusedIndex == 0 or why == 3 or wait > retryAfter then
    refusedIndex, retryAfter, reason = i, wait, why
  end
end

-- A window log member is "<ms>:<leaseId>:<units>"; the sum of units in the window counts.
local function windowUnits(key, from)
  local members = redis.call('ZRANGEBYSCORE', key, '(' .. from, '+inf', 'WITHSCORES')
  local total = 0
  local entries = {}
  for i = 1, #members, 2 do
    local units = tonumber(string.match(members[i], ':(%d+)$'))
    total = total + units
    entries[#entries + 1] = { tonumber(members[i + 1]), units }
  end
  return total, entries
end

for i = 1, count do
  local base = 4 + (i - 1) * 8
  local units = tonumber(ARGV[base + 1])
  local rateLimit, ratePeriod, rateBurst = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  local windowLimit, windowMs = tonumber(ARGV[base + 5]), tonumber(ARGV[base + 6])
  local concurrency = tonumber(ARGV[base + 7])
  local gcraKey, windowKey, leaseKey = KEYS[(i - 1) * 3 + 1], KEYS[(i - 1) * 3 + 2], KEYS[(i - 1) * 3 + 3]
  local rateRemaining, rateReset, windowRemaining, windowReset = -1, -1, -1, -1

  if rateLimit > 0 then
    local interval = ratePeriod / rateLimit
    local tolerance = rateBurst * interval
    local tat = gcraTat(gcraKey, now)
    local nextTat = tat + units * interval
    local backlog = nextTat - now
    if units > rateBurst then
      refuse(i, ratePeriod, 3)
      rateRemaining, rateReset = math.floor((tolerance - (tat - now)) / interval), tat - now
    elseif backlog <= tolerance + 0.000001 then
      newTat[i] = nextTat
      rateRemaining, rateReset = math.floor((tolerance - backlog + 0.000001) / interval), backlog
    else
      refuse(i, backlog - tolerance, 1)
      rateRemaining, rateReset = math.floor((tolerance - (tat - now) + 0.000001) / interval), tat - now
    end
  end

  if windowLimit > 0 then
    redis.call('ZREMRANGEBYSCORE', windowKey, '-inf', now - windowMs)
    local used, entries = windowUnits(windowKey, now - windowMs)
    local newest = entries[#entries] and entries[#entries][1] or now
    windowReset = used > 0 and (newest + windowMs - now) or windowMs
    if units > windowLimit then
      refuse(i, windowMs, 3)
      windowRemaining = math.max(0, windowLimit - used)
    elseif used + units <= windowLimit then
      windowRemaining = windowLimit - used - units
    else
      windowRemaining = math.max(0, windowLimit - used)
      local mustExpire = used + units - windowLimit
      local freed, at = 0, now
      for _, entry in ipairs(entries) do
        freed = freed + entry[2]
        at = entry[1]
        if freed >= mustExpire then break end
      end
      refuse(i, at + windowMs - now, 1)
    end
  end

  if concurrency > 0 then
    redis.call('ZREMRANGEBYSCORE', leaseKey, '-inf', now)
    if redis.call('ZCARD', leaseKey) + 1 > concurrency then refuse(i, 1000, 2) end
  end

  views[#views + 1] = tostring(rateRemaining)
  views[#views + 1] = tostring(rateReset)
  views[#views + 1] = tostring(windowRemaining)
  views[#views + 1] = tostring(windowReset)
end

if refusedIndex == 0 then
  for i = 1, count do
    local base = 4 + (i - 1) * 8
    local units = tonumber(ARGV[base + 1])
    local windowMs = tonumber(ARGV[base + 6])
    local gcraKey, windowKey, leaseKey = KEYS[(i - 1) * 3 + 1], KEYS[(i - 1) * 3 + 2], KEYS[(i - 1) * 3 + 3]
    if newTat[i] then
      gcraStore(gcraKey, newTat[i], now)
    end
    if tonumber(ARGV[base + 5]) > 0 then
      redis.call('ZADD', windowKey, now, string.format('%.3f', now) .. ':' .. leaseId .. ':' .. units)
      redis.call('PEXPIRE', windowKey, math.ceil(windowMs))
    end
    if tonumber(ARGV[base + 7]) > 0 then
      redis.call('ZADD', leaseKey, now + leaseTtl, leaseId)
      redis.call('PEXPIRE', leaseKey, leaseTtl)
    end
  end
else
  -- What remains without this request, for the scopes that would have passed.
  for i = 1, count do
    local base = 4 + (i - 1) * 8
    local units = tonumber(ARGV[base + 1])
    if newTat[i] then views[(i - 1) * 4 + 1] = tostring(tonumber(views[(i - 1) * 4 + 1]) + units) end
  end
end

local out = { refusedIndex == 0 and 1 or 0, refusedIndex, tostring(retryAfter), reason }
for _, v in ipairs(views) do out[#out + 1] = v end
return out
