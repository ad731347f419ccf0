--[[
  snapshot: the stored part of the config, read in one atomic step with its revision.
  KEYS: version counter, epoch, workspaces hash, targets hash, routes hash, customers hash.
  Returns { epoch or '', version or '0', Redis time in ms, workspaces, targets, routes,
  customers }, the hashes as flat field/value lists (HGETALL). The time lets the writer set
  a commit deadline on Redis's own clock.
]]
local t = redis.call('TIME')
return {
  redis.call('GET', KEYS[2]) or '',
  redis.call('GET', KEYS[1]) or '0',
  tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000),
  redis.call('HGETALL', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
  redis.call('HGETALL', KEYS[5]),
  redis.call('HGETALL', KEYS[6]),
}
