--[[
  commit: applies one admin change, only if nobody changed the stored config since the
  writer read it (compare-and-set on epoch and version), and only before the writer's
  deadline, so a command that sat in a client's offline queue cannot land after the admin
  was told it failed.
  KEYS: version counter, epoch, workspaces hash, targets hash, routes hash, customers hash.
  ARGV: expected epoch ('' when none), expected version ('0' when none), deadline (Redis
        time in ms), epoch to start when there is none, n, then n × (section 'w', 't', 'r'
        or 'c', name, JSON document; the JSON null is a tombstone that hides the file's
        entry).
  Returns {1, epoch, version} when applied; {0, epoch, version} when the revision moved
  (read again and retry); {-1, epoch, version} when the deadline had passed.
]]
local epoch = redis.call('GET', KEYS[2]) or ''
local version = tonumber(redis.call('GET', KEYS[1]) or '0')
if epoch ~= ARGV[1] or version ~= tonumber(ARGV[2]) then return {0, epoch, version} end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[3]) then
  return {-1, epoch, version}
end
if epoch == '' then
  epoch = ARGV[4]
  redis.call('SET', KEYS[2], epoch)
end
local hashes = { w = KEYS[3], t = KEYS[4], r = KEYS[5], c = KEYS[6] }
for i = 0, tonumber(ARGV[5]) - 1 do
  redis.call('HSET', hashes[ARGV[6 + i * 3]], ARGV[7 + i * 3], ARGV[8 + i * 3])
end
version = redis.call('INCR', KEYS[1])
return {1, epoch, version}
