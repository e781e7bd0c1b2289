import RedisClient
import SessionCore

/// The Lua scripts of `RedisSessionStore`. Session scripts touch exactly one key (KEYS[1], the
/// session hash); user scripts touch the user's index and generation keys, which share one
/// hash tag (`{user}`) and so one cluster slot. Every script reads the clock from Redis and
/// returns `{status, …}`: 0 missing, 1 found, 2 alias → new id, 3 too large, 4 superseded.
/// bench/scripts holds copies of the `/count` scripts (a unit test keeps them equal).
extension RedisSessionStore {
    /// The attribute rule of `SessionLimits.admits`, for scripts that write attributes: counts
    /// what the session will hold after the write (never a running total another path could
    /// skip). Application attributes are fields not starting with `_` and not `count`.
    ///
    /// Limits count plaintext bytes, whatever is stored: when the store seals values (`sealed`
    /// true), a value in `SealedValue` form counts as the plaintext it seals, whose length the
    /// form fixes (base64url characters × 3 / 4, rounded down, minus nonce and tag); any other
    /// value counts its own bytes. So a session is admitted or refused alike with or without
    /// encryption, and a key rotation never pushes one over its limit. Only the store decides
    /// `sealed` (never a client), so a plain value that merely looks sealed cannot count short.
    /// The limits come as the strings the script was given, parsed only when the session holds
    /// attributes (a parse costs Redis a strtod; a new `/count` session has none).
    private static let admits = """
        local function plainLength(v, sealed)
          if sealed and string.sub(v, 1, \(SealedValue.prefix.utf8.count)) == '\(SealedValue.prefix)' then
            local colon = string.find(v, ':', \(SealedValue.prefix.utf8.count + 1), true)
            if colon then
              local bytes = math.floor((#v - colon) * 3 / 4) - \(SealedValue.overheadByteCount)
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

        """

    /// The start of every script that needs the whole session: reads it into `h` (flat) and `f`
    /// (by name), answers {0} for a missing or expired session (deleting the latter), {2, id}
    /// for an alias and {4} for a tombstone, and leaves `now` and `abs` (absolute expiry) set,
    /// and `clock`, the time as the string TIME gave (written back as it is: no number to format).
    private static let readLiveSession = """
        local h = redis.call('HGETALL', KEYS[1])
        if #h == 0 then return {0} end
        local f = {}
        for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
        if f['_alias'] then return {2, f['_alias']} end
        if f['_sup'] then return {4} end
        local clock = redis.call('TIME')[1]
        local now = tonumber(clock)
        local abs = tonumber(f['_x'] or '0') or 0
        if abs > 0 and abs <= now then redis.call('DEL', KEYS[1]) return {0} end

        """

    /// The touch (`SessionTimeouts.touchIsDue`), the one copy every script that renews uses;
    /// it needs the locals `now`, `clock` (TIME's seconds as a string) and `abs`. Unless
    /// `last` (the session's `_s` before the request) is a time not after now and less than
    /// `interval` (a string, seconds) ago, sets `_s` to now and the TTL to the smaller of ARGV[1]
    /// (idle) and the absolute remainder, and returns true; otherwise writes nothing and returns
    /// false. A `_s` that is no number (or NaN, which fails every comparison) is renewed.
    private static let refresh = """
        local function refresh(interval, last)
          last = tonumber(last or '')
          if last and last <= now and now - last < tonumber(interval) then return false end
          redis.call('HSET', KEYS[1], '_s', clock)
          local ttl = ARGV[1]
          if abs > 0 and abs - now < tonumber(ttl) then ttl = abs - now end
          redis.call('EXPIRE', KEYS[1], ttl)
          return true
        end

        """

    /// The `/count` hot path. ARGV idle, field, amount, touch interval. Returns {1, value}. A
    /// live session has `_c` (or, made by the seed's layout, `count`); an alias or tombstone has
    /// neither, and only then are `_alias` and `_sup` read (a second HMGET, off the hot path).
    ///
    /// Written for Redis's CPU, which it spends mostly per `redis.call` (each about as much as a
    /// whole HINCRBY sent by a client) and per conversion between numbers and strings (`tonumber`
    /// runs strtod; a number passed to `redis.call` is formatted with printf): the common path
    /// (no touch due) makes three calls (HMGET, TIME, HINCRBY), reads four fields and parses
    /// four numbers; a touch adds HSET and EXPIRE, passing the clock and the idle timeout on as
    /// the strings they came as. Skipping the touch saves Redis about 3 µs of the script's 16
    /// (redis-benchmark on this project's 2-core machine). Counting with Lua arithmetic and one
    /// HSET instead of HINCRBY was measured dearer (one more parse and one more format).
    static let incrementScript = RedisScript("""
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

        """ + refresh + """
        refresh(ARGV[4], f[4])
        return {1, value}
        """)

    /// ARGV idle, absolute lifetime, maxAttributes, maxBytes, sealed ('1' when values are
    /// sealed, else '0'), then field/value pairs (which may carry `_c` and `_x` when a rotation
    /// copies a session). Returns {1, now} when created, {0} if the key exists (nothing
    /// written), {3} when the fields break the limits. Like the increment script, it passes the
    /// clock and the idle timeout on as strings and parses only what it computes with.
    static let createScript = RedisScript(admits + """
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
        """)

    /// ARGV idle, touch (0/1), field to increment by 1 ('' for none; implies touch), touch
    /// interval (a touch happens only when due, see `refresh`). Returns {1, {field, value, …},
    /// now}: the fields as HGETALL gave them, with a pair appended for each field the script
    /// changed (the reader keeps a name's last value), so no table is rebuilt (≈1.5 µs of Redis
    /// for a logged-in session's eleven fields, redis-benchmark).
    static let loadScript = RedisScript(readLiveSession + refresh + """
        if ARGV[3] ~= '' then
          h[#h + 1] = ARGV[3]
          h[#h + 1] = tostring(redis.call('HINCRBY', KEYS[1], ARGV[3], 1))
        end
        if (ARGV[2] == '1' or ARGV[3] ~= '') and refresh(ARGV[4], f['_s']) then
          h[#h + 1] = '_s'
          h[#h + 1] = clock
        end
        return {1, h, now}
        """)

    /// ARGV idle, touch interval, maxAttributes, maxBytes, sealed ('1'/'0'), number of pairs to
    /// set, the pairs, then names to remove. Applies the delta only if the session lives and the result is
    /// within the limits. Returns {1} applied, {3} too large (nothing written).
    static let updateScript = RedisScript(readLiveSession + refresh + admits + """
        local last = f['_s']
        local npairs = tonumber(ARGV[6])
        local sets = {}
        local i = 7
        for k = 1, npairs do
          f[ARGV[i]] = ARGV[i + 1]
          sets[#sets + 1] = ARGV[i]
          sets[#sets + 1] = ARGV[i + 1]
          i = i + 2
        end
        local removes = {}
        for k = i, #ARGV do
          f[ARGV[k]] = nil
          removes[#removes + 1] = ARGV[k]
        end
        if not admits(f, ARGV[3], ARGV[4], ARGV[5] == '1') then return {3} end
        if #sets > 0 then redis.call('HSET', KEYS[1], unpack(sets)) end
        if #removes > 0 then redis.call('HDEL', KEYS[1], unpack(removes)) end
        refresh(ARGV[2], last)
        return {1}
        """)

    /// ARGV alias (what `_alias` holds: the new id, or with hashed ids the new id sealed under
    /// the old one; '' for a tombstone), mark ('alias' or 'superseded'), grace seconds. Reads
    /// the session and replaces it by a pointer (`_alias`) or a tombstone (`_sup`) for the grace
    /// period (deletes it for 0): no session data stays at the old id. Returns
    /// {1, {field, value, …}}.
    static let rotateScript = RedisScript(readLiveSession + """
        redis.call('DEL', KEYS[1])
        local grace = tonumber(ARGV[3])
        if grace > 0 then
          if ARGV[2] == 'alias' then
            redis.call('HSET', KEYS[1], '_alias', ARGV[1])
          else
            redis.call('HSET', KEYS[1], '_sup', '1')
          end
          redis.call('EXPIRE', KEYS[1], grace)
        end
        return {1, h}
        """)

    /// KEYS index, generation. ARGV handle, session reference, expected generation, TTL. Records
    /// `<now in µs>:<reference>` under the handle only if no revoke-all moved the generation since the
    /// caller read it. Returns the index size, or -1 (nothing written).
    static let indexScript = RedisScript("""
        local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
        if gen ~= tonumber(ARGV[3]) then return -1 end
        local t = redis.call('TIME')
        redis.call('HSET', KEYS[1], ARGV[1], t[1] .. string.format('%06d', tonumber(t[2])) .. ':' .. ARGV[2])
        redis.call('EXPIRE', KEYS[1], ARGV[4])
        return redis.call('HLEN', KEYS[1])
        """)

    /// KEYS index. ARGV minimum age in seconds (0: any), then handle/session reference pairs:
    /// removes each handle whose entry still names that session and, for a minimum age, was
    /// written at least that long ago (entries are `<seconds><microseconds, 6 digits>:<ref>`).
    /// Returns how many were removed.
    static let unindexScript = RedisScript("""
        local oldest = nil
        local age = tonumber(ARGV[1])
        if age > 0 then
          local t = redis.call('TIME')
          oldest = (tonumber(t[1]) - age) * 1000000 + tonumber(t[2])
        end
        local removed = 0
        for i = 2, #ARGV, 2 do
          local entry = redis.call('HGET', KEYS[1], ARGV[i])
          if entry and string.sub(entry, -(#ARGV[i + 1] + 1)) == ':' .. ARGV[i + 1]
             and (oldest == nil or (tonumber(string.match(entry, '^(%d+):')) or 0) <= oldest) then
            removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
          end
        end
        return removed
        """)

    /// KEYS index, generation. ARGV TTL. Moves the generation on (with a TTL: every key the
    /// project writes expires) and reads the whole index, which stays until the caller has
    /// deleted the sessions and unindexed them. Returns the handle/entry pairs. Runs even when
    /// Redis is full at its `maxmemory` (`allow-oom`): a flood of new sessions must not keep a
    /// user from ending a stolen one (what follows, `DEL` and `HDEL`, only frees memory).
    static let revokeScript = RedisScript("""
        #!lua flags=allow-oom
        redis.call('INCR', KEYS[2])
        redis.call('EXPIRE', KEYS[2], ARGV[1])
        return redis.call('HGETALL', KEYS[1])
        """)

    /// KEYS nonce. ARGV expires (Unix seconds), maximum lifetime. On Redis's clock: 3 when
    /// `expires` is past, 4 when it is too far ahead; otherwise counts the nonce's uses, keeps
    /// the record until `expires`, and returns 1 at the first use, 2 after. HINCRBY and EXPIRE,
    /// not SET NX, so the project's ACL (deploy/redis/session-store.acl) needs no new command.
    static let claimNonceScript = RedisScript("""
        local now = tonumber(redis.call('TIME')[1])
        local expires = tonumber(ARGV[1])
        if expires < now then return 3 end
        if expires > now + tonumber(ARGV[2]) then return 4 end
        local uses = redis.call('HINCRBY', KEYS[1], 'uses', 1)
        if uses > 1 then return 2 end
        redis.call('EXPIRE', KEYS[1], expires - now + 1)
        return 1
        """)

    /// KEYS attempts. ARGV limit, window seconds. On Redis's clock: within an open window, `{0,
    /// seconds left}` at the limit (nothing counted), else one more attempt and `{1, 0}`; without
    /// one, a new window of one attempt. The window's end is a field (the project's ACL has no
    /// TTL command); the key's TTL drops it with the window.
    static let countLoginAttemptScript = RedisScript("""
        local now = tonumber(redis.call('TIME')[1])
        local v = redis.call('HMGET', KEYS[1], 'n', 'until')
        local n, ends = tonumber(v[1]), tonumber(v[2])
        if n and ends and ends > now then
          if n >= tonumber(ARGV[1]) then return {0, ends - now} end
          redis.call('HINCRBY', KEYS[1], 'n', 1)
          return {1, 0}
        end
        local window = tonumber(ARGV[2])
        redis.call('HSET', KEYS[1], 'n', 1, 'until', now + window)
        redis.call('EXPIRE', KEYS[1], window)
        return {1, 0}
        """)

    /// KEYS attempts. Takes one counted attempt back (a login that succeeded), never below 0.
    static let uncountLoginAttemptScript = RedisScript("""
        local n = tonumber(redis.call('HGET', KEYS[1], 'n'))
        if n and n > 0 then redis.call('HINCRBY', KEYS[1], 'n', -1) end
        return 0
        """)

    /// KEYS index. Returns how many entries it holds (for indexes under older names).
    static let indexSizeScript = RedisScript("""
        return redis.call('HLEN', KEYS[1])
        """)
}
