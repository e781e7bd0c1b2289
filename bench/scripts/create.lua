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
  return count <= maxCount and bytes <= maxBytes
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local now = tonumber(redis.call('TIME')[1])
local f = {['_c'] = tostring(now), ['_x'] = tostring(now + tonumber(ARGV[2]))}
for i = 6, #ARGV, 2 do f[ARGV[i]] = ARGV[i + 1] end
f['_s'] = tostring(now)
if not admits(f, tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1') then return {3} end
local abs = tonumber(f['_x']) or 0
local ttl = tonumber(ARGV[1])
if abs - now < ttl then ttl = abs - now end
if ttl <= 0 then return {0} end
local pairs_ = {}
for k, v in pairs(f) do pairs_[#pairs_ + 1] = k pairs_[#pairs_ + 1] = v end
redis.call('HSET', KEYS[1], unpack(pairs_))
redis.call('EXPIRE', KEYS[1], ttl)
return {1, now}