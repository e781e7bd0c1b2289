import RedisClient

/// The Lua scripts of `RedisSessionStore`. Each touches exactly one key (KEYS[1]), reads the
/// clock from Redis, and returns `{status, …}` (0 missing, 1 found, 2 alias → new id, 3 too
/// large). bench/scripts holds copies of the two `/count` scripts (a unit test keeps them equal).
extension RedisSessionStore {
    /// ARGV field, amount, idle. Returns {1, value, user, generation}.
    static let incrementScript = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
        local f = redis.call('HMGET', KEYS[1], '_alias', '_x', '_u', '_g')
        if f[1] then return {2, f[1]} end
        local now = tonumber(redis.call('TIME')[1])
        local abs = tonumber(f[2] or '0')
        if abs > 0 and abs <= now then redis.call('DEL', KEYS[1]) return {0} end
        local value = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
        redis.call('HSET', KEYS[1], '_s', now)
        local ttl = tonumber(ARGV[3])
        if abs > 0 and abs - now < ttl then ttl = abs - now end
        redis.call('EXPIRE', KEYS[1], ttl)
        return {1, value, f[3] or '', f[4] or ''}
        """)

    /// ARGV idle, absolute lifetime, then field/value pairs (which may carry _c and _x when a
    /// rotation copies a session). Returns 1 if created, 0 if the key existed (nothing written).
    static let createScript = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        local now = tonumber(redis.call('TIME')[1])
        redis.call('HSET', KEYS[1], '_c', now, '_s', now, '_x', now + tonumber(ARGV[2]))
        if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
        local abs = tonumber(redis.call('HGET', KEYS[1], '_x'))
        local ttl = tonumber(ARGV[1])
        if abs - now < ttl then ttl = abs - now end
        if ttl <= 0 then redis.call('DEL', KEYS[1]) return 0 end
        redis.call('EXPIRE', KEYS[1], ttl)
        return 1
        """)

    /// The start of every script that needs the whole session: reads it into `h` (flat) and `f`
    /// (by name), answers {0} for a missing or expired session (deleting the latter) and
    /// {2, id} for a rotation alias, and leaves `now` and `abs` (absolute expiry) set.
    private static let readLiveSession = """
        local h = redis.call('HGETALL', KEYS[1])
        if #h == 0 then return {0} end
        local f = {}
        for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
        if f['_alias'] then return {2, f['_alias']} end
        local now = tonumber(redis.call('TIME')[1])
        local abs = tonumber(f['_x'] or '0')
        if abs > 0 and abs <= now then redis.call('DEL', KEYS[1]) return {0} end

        """

    /// ARGV idle, touch (0/1). Returns {1, {field, value, …}, now}.
    static let loadScript = RedisScript(readLiveSession + """
        if ARGV[2] == '1' then
          redis.call('HSET', KEYS[1], '_s', now)
          for i = 1, #h, 2 do if h[i] == '_s' then h[i + 1] = tostring(now) end end
          local ttl = tonumber(ARGV[1])
          if abs > 0 and abs - now < ttl then ttl = abs - now end
          redis.call('EXPIRE', KEYS[1], ttl)
        end
        return {1, h, now}
        """)

    /// ARGV idle, maxAttributes, maxBytes, number of pairs to set, the pairs, then names to
    /// remove. Applies the delta only if the session lives; keeps attribute count and bytes in
    /// `_n`/`_z`. Returns {1} applied, {3} too large (nothing written).
    static let updateScript = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
        local f = redis.call('HMGET', KEYS[1], '_alias', '_x', '_n', '_z')
        if f[1] then return {2, f[1]} end
        local now = tonumber(redis.call('TIME')[1])
        local abs = tonumber(f[2] or '0')
        if abs > 0 and abs <= now then redis.call('DEL', KEYS[1]) return {0} end
        local count = tonumber(f[3] or '0')
        local bytes = tonumber(f[4] or '0')
        local npairs = tonumber(ARGV[4])
        local i = 5
        for k = 1, npairs do
          local old = redis.call('HGET', KEYS[1], ARGV[i])
          if old then bytes = bytes - #ARGV[i] - #old else count = count + 1 end
          bytes = bytes + #ARGV[i] + #ARGV[i + 1]
          i = i + 2
        end
        for k = i, #ARGV do
          local old = redis.call('HGET', KEYS[1], ARGV[k])
          if old then count = count - 1 bytes = bytes - #ARGV[k] - #old end
        end
        if count > tonumber(ARGV[2]) or bytes > tonumber(ARGV[3]) then return {3} end
        i = 5
        for k = 1, npairs do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) i = i + 2 end
        for k = i, #ARGV do redis.call('HDEL', KEYS[1], ARGV[k]) end
        redis.call('HSET', KEYS[1], '_n', count, '_z', bytes, '_s', now)
        local ttl = tonumber(ARGV[1])
        if abs > 0 and abs - now < ttl then ttl = abs - now end
        redis.call('EXPIRE', KEYS[1], ttl)
        return {1}
        """)

    /// ARGV new id, grace seconds. Reads the session and turns it into an alias of the new id
    /// for the grace period (deletes it for 0). Returns {1, {field, value, …}}.
    static let rotateScript = RedisScript(readLiveSession + """
        local grace = tonumber(ARGV[2])
        if grace > 0 then
          redis.call('HSET', KEYS[1], '_alias', ARGV[1])
          redis.call('EXPIRE', KEYS[1], grace)
        else
          redis.call('DEL', KEYS[1])
        end
        return {1, h}
        """)
}
