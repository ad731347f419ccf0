--[[
  server-now: the time in ms on Redis's clock, so every node decides on the same clock
  whatever its own says.
]]
local function serverNow()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
