local function plainLength(v, sealed)
  if sealed and string.sub(v, 1, 5) == 'enc1:' then
    local colon = string.find(v, ':', 6, true)
    if colon then
      local bytes = math.floor((#v - colon) * 3 / 4) - 28
      if bytes >= 0 then return bytes end
    end
  end
  return #v
end
local function admits(f, maxCount, maxBytes, sealed)
  local count, bytes = 0, 0
  for k, v in pairs(f) do
    if string.sub(k, 1, 1) ~= '_' and k ~= 'count' then
      count = count + 1
      bytes = bytes + #k + plainLength(tostring(v), sealed)
    end
  end
  return count == 0 or (count <= tonumber(maxCount) and bytes <= tonumber(maxBytes))
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local clock = redis.call('TIME')[1]
local now = tonumber(clock)
local abs = now + tonumber(ARGV[2])
local f = {['_c'] = clock, ['_x'] = abs}
for i = 6, #ARGV, 2 do f[ARGV[i]] = ARGV[i + 1] end
f['_s'] = clock
if f['_x'] ~= abs then abs = tonumber(f['_x']) or 0 end
if not admits(f, ARGV[3], ARGV[4], ARGV[5] == '1') then return {3} end
local idle = tonumber(ARGV[1])
local ttl = ARGV[1]
if abs - now < idle then ttl = abs - now idle = ttl end
if idle <= 0 then return {0} end
local pairs_ = {}
for k, v in pairs(f) do pairs_[#pairs_ + 1] = k pairs_[#pairs_ + 1] = v end
redis.call('HSET', KEYS[1], unpack(pairs_))
redis.call('EXPIRE', KEYS[1], ttl)
return {1, now}