local f = redis.call('HMGET', KEYS[1], '_c', 'count', '_x', '_s')
if not f[1] and not f[2] then
  local g = redis.call('HMGET', KEYS[1], '_alias', '_sup')
  if g[1] then return {2, g[1]} end
  if g[2] then return {4} end
  return {0}
end
local clock = redis.call('TIME')[1]
local now = tonumber(clock)
local abs = tonumber(f[3] or '0') or 0
if abs > 0 and abs <= now then redis.call('DEL', KEYS[1]) return {0} end
local value = redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
local function refresh(interval, last)
  last = tonumber(last or '')
  if last and last <= now and now - last < tonumber(interval) then return false end
  redis.call('HSET', KEYS[1], '_s', clock)
  local ttl = ARGV[1]
  if abs > 0 and abs - now < tonumber(ttl) then ttl = abs - now end
  redis.call('EXPIRE', KEYS[1], ttl)
  return true
end
refresh(ARGV[4], f[4])
return {1, value}