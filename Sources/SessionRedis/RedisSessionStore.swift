import RedisClient
import SessionCore

/// A `SessionStore` keeping each session as a Redis hash `<prefix><id>` with a TTL, and per
/// user a hash `<userPrefix><user>:sessions` (handle → id) and a counter `<userPrefix><user>:gen`.
///
/// Every session operation is one Lua script called by SHA on one key: atomic, one round trip,
/// and valid on Redis Cluster (a single key always lives on one node). The scripts take the time
/// from Redis (`TIME`), so all instances share one clock. Owns its connection, so it is used by
/// one thread (one store per worker thread).
public final class RedisSessionStore: SessionStore {
    public let connection: RedisConnection
    /// Prepended to every session id to form its key (`sid_`).
    public let keyPrefix: String
    /// Prepended to user ids for the index and generation keys (`sidu_`).
    public let userKeyPrefix: String

    /// Expiry of a user's index, refreshed on every write: no session lives longer than the
    /// absolute lifetime (plus a rotation's grace), so an index idle that long holds only dead
    /// entries and goes away by itself.
    public let indexLifetimeSeconds: Int

    public init(connection: RedisConnection, keyPrefix: String = "sid_", userKeyPrefix: String = "sidu_",
                indexLifetimeSeconds: Int = 12 * 3600 + 60) {
        self.connection = connection
        self.keyPrefix = keyPrefix
        self.userKeyPrefix = userKeyPrefix
        self.indexLifetimeSeconds = indexLifetimeSeconds
    }

    /// The Redis key of a session.
    public func key(for id: SessionID) -> String { keyPrefix + id.rawValue }

    public func increment(_ field: String, by amount: Int64, in id: SessionID, timeouts: SessionTimeouts) throws(SessionStoreError) -> StoreLookup<Counted> {
        let prefix = keyPrefix
        let reply = try run(Self.incrementScript) { command in
            command.append(concatenating: prefix, id.rawValue)
            command.append(field)
            command.append(amount)
            command.append(timeouts.idleSeconds)
        }
        return try Self.lookup(reply) { elements throws(SessionStoreError) in
            guard elements.count >= 4, let value = elements[1].integer else { throw .failed("increment: unexpected reply") }
            let user = elements[2].text ?? ""
            let owner = user.isEmpty ? nil : SessionOwner(userID: user, generation: Int64(elements[3].text ?? "") ?? 0)
            return Counted(value: value, owner: owner)
        }
    }

    public func create(_ id: SessionID, fields: [(name: String, value: String)], timeouts: SessionTimeouts) throws(SessionStoreError) -> Bool {
        let prefix = keyPrefix
        let reply = try run(Self.createScript) { command in
            command.append(concatenating: prefix, id.rawValue)
            command.append(timeouts.idleSeconds)
            command.append(timeouts.absoluteSeconds)
            for field in fields {
                command.append(field.name)
                command.append(field.value)
            }
        }
        guard let created = reply.integer else { throw .failed("create: unexpected reply") }
        return created == 1
    }

    public func load(_ id: SessionID, timeouts: SessionTimeouts, touch: Bool) throws(SessionStoreError) -> StoreLookup<SessionRecord> {
        let prefix = keyPrefix
        let reply = try run(Self.loadScript) { command in
            command.append(concatenating: prefix, id.rawValue)
            command.append(timeouts.idleSeconds)
            command.append(touch ? 1 : 0)
        }
        return try Self.lookup(reply) { elements throws(SessionStoreError) in
            guard elements.count >= 3, case .array(let pairs) = elements[1], let now = elements[2].integer else {
                throw .failed("load: unexpected reply")
            }
            return SessionRecord(id: id, fields: Self.dictionary(pairs), now: now)
        }
    }

    public func update(_ id: SessionID, set: [(name: String, value: String)], remove: [String], timeouts: SessionTimeouts,
                       limits: SessionLimits) throws(SessionStoreError) -> StoreLookup<UpdateOutcome> {
        // One value per name: the script's size accounting counts each name once.
        var merged: [String: String] = [:]
        var order: [String] = []
        for field in set {
            if merged.updateValue(field.value, forKey: field.name) == nil { order.append(field.name) }
        }
        let removals = Array(Set(remove).subtracting(order))
        let prefix = keyPrefix
        let reply = try run(Self.updateScript) { command in
            command.append(concatenating: prefix, id.rawValue)
            command.append(timeouts.idleSeconds)
            command.append(limits.maxAttributes)
            command.append(limits.maxBytes)
            command.append(order.count)
            for name in order {
                command.append(name)
                command.append(merged[name] ?? "")
            }
            for name in removals { command.append(name) }
        }
        return try Self.lookup(reply) { elements throws(SessionStoreError) in
            guard let status = elements.first?.integer else { throw .failed("update: unexpected reply") }
            return status == 3 ? .tooLarge : .applied
        }
    }

    public func destroy(_ id: SessionID) throws(SessionStoreError) -> Bool {
        let reply = try send(RedisCommand("DEL", key(for: id)))
        return reply.integer == 1
    }

    public func beginRotation(of id: SessionID, to newID: SessionID, graceSeconds: Int) throws(SessionStoreError) -> StoreLookup<[String: String]> {
        let prefix = keyPrefix
        let reply = try run(Self.rotateScript) { command in
            command.append(concatenating: prefix, id.rawValue)
            command.append(newID.rawValue)
            command.append(graceSeconds)
        }
        return try Self.lookup(reply) { elements throws(SessionStoreError) in
            guard elements.count >= 2, case .array(let pairs) = elements[1] else { throw .failed("rotate: unexpected reply") }
            return Self.dictionary(pairs)
        }
    }

    public func userGeneration(_ user: String) throws(SessionStoreError) -> Int64 {
        let reply = try send(RedisCommand("GET", generationKey(user)))
        if case .null = reply { return 0 }
        guard let text = reply.text, let value = Int64(text) else { throw .failed("generation: unexpected reply") }
        return value
    }

    public func revokeAllSessions(of user: String) throws(SessionStoreError) -> Int64 {
        guard let value = try send(RedisCommand("INCR", generationKey(user))).integer else {
            throw .failed("revoke: unexpected reply")
        }
        return value
    }

    public func index(_ id: SessionID, handle: String, user: String) throws(SessionStoreError) {
        _ = try pipeline([RedisCommand("HSET", indexKey(user), handle, id.rawValue),
                          RedisCommand("EXPIRE", indexKey(user), String(indexLifetimeSeconds))])
        _ = try indexedSessions(of: user)   // prune entries whose sessions are gone
    }

    public func indexedSessions(of user: String) throws(SessionStoreError) -> [(handle: String, id: SessionID)] {
        guard case .array(let pairs) = try send(RedisCommand("HGETALL", indexKey(user))) else {
            throw .failed("index: unexpected reply")
        }
        var entries: [(handle: String, id: SessionID)] = []
        var stale: [String] = []
        for (handle, value) in Self.dictionary(pairs) {
            if let id = SessionID(validating: value) { entries.append((handle, id)) } else { stale.append(handle) }
        }
        // One pipelined round trip to see which sessions still exist.
        let existence = try pipeline(entries.map { RedisCommand("EXISTS", key(for: $0.id)) })
        var live: [(handle: String, id: SessionID)] = []
        for (entry, exists) in zip(entries, existence) {
            if exists.integer == 1 { live.append(entry) } else { stale.append(entry.handle) }
        }
        if !stale.isEmpty {
            _ = try send(RedisCommand(arguments: ["HDEL", indexKey(user)] + stale))
        }
        return live.sorted { $0.handle < $1.handle }
    }

    public func unindex(handle: String, user: String) throws(SessionStoreError) {
        _ = try send(RedisCommand("HDEL", indexKey(user), handle))
    }

    public func checkHealth() throws(SessionStoreError) {
        let reply = try send(RedisCommand("PING"))
        guard reply.text == "PONG" else { throw .failed("PING answered \(reply)") }
    }

    // MARK: - Helpers

    private func indexKey(_ user: String) -> String { userKeyPrefix + user + ":sessions" }
    private func generationKey(_ user: String) -> String { userKeyPrefix + user + ":gen" }

    /// Maps a script's `{status, …}` reply: 0 missing, 2 moved (alias), 1 or 3 found.
    private static func lookup<Value>(_ reply: RedisReply, _ found: ([RedisReply]) throws(SessionStoreError) -> Value)
        throws(SessionStoreError) -> StoreLookup<Value> {
        guard case .array(let elements) = reply, let status = elements.first?.integer else {
            throw .failed("script returned an unexpected reply")
        }
        switch status {
        case 0: return .missing
        case 2:
            guard elements.count >= 2, let text = elements[1].text, let target = SessionID(validating: text) else {
                throw .failed("alias without a valid target")
            }
            return .moved(target)
        default:
            return .found(try found(elements))
        }
    }

    private static func dictionary(_ pairs: [RedisReply]) -> [String: String] {
        var result: [String: String] = [:]
        var index = 0
        while index + 1 < pairs.count {
            if let name = pairs[index].text, let value = pairs[index + 1].text { result[name] = value }
            index += 2
        }
        return result
    }

    private func send(_ command: RedisCommand) throws(SessionStoreError) -> RedisReply {
        let reply: RedisReply
        do { reply = try connection.send(command) } catch { throw Self.storeError(error) }
        if let error = reply.serverError { throw Self.storeError(.server(error)) }
        return reply
    }

    private func pipeline(_ commands: [RedisCommand]) throws(SessionStoreError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        do { return try connection.pipeline(commands) } catch { throw Self.storeError(error) }
    }

    /// Runs a one-key session script; `addArguments` appends the key first.
    private func run(_ script: RedisScript, _ addArguments: (inout RedisCommand) -> Void) throws(SessionStoreError) -> RedisReply {
        do {
            return try connection.run(script, keyCount: 1, addArguments)
        } catch {
            throw Self.storeError(error)
        }
    }

    private static func storeError(_ error: RedisError) -> SessionStoreError {
        switch error {
        case .connectFailed, .timedOut, .connectionLost: return .unavailable(error.description)
        case .server(let serverError) where ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"].contains(serverError.code):
            return .unavailable(error.description)
        case .server, .unexpectedReply, .invalidCommand: return .failed(error.description)
        }
    }
}
