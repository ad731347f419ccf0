--[[
  gcra: the state of a rate scope, its theoretical arrival time (TAT) in ms on the server's
  clock. A TAT in the past is a full bucket and reads as now; a TAT is kept exactly as long
  as it lies ahead, after which a missing key means the same full bucket.
]]
local function gcraTat(key, now)
  return math.max(tonumber(redis.call('GET', key) or now), now)
end

local function gcraStore(key, tat, now)
  redis.call('SET', key, tostring(tat), 'PX', math.max(1, math.ceil(tat - now)))
end
