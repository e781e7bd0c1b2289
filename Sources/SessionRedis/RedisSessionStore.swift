import Glibc
import RedisClient
import SessionCore

/// A `SessionStore` keeping each session as a Redis hash `<prefix><id>` with a TTL, and per user
/// a hash `<userPrefix>{<user>}:sessions` (handle → `<indexed at, µs>:<id>`) and a counter
/// `<userPrefix>{<user>}:gen`, both with TTLs.
///
/// Every session operation is one Lua script called by SHA on one key: atomic, one round trip,
/// and valid on Redis Cluster (a single key always lives on one node). A user's two keys share
/// the hash tag `{<user>}`, so the user scripts are single-slot too. Operations on several
/// sessions (`loadMany`, `destroy`) are one pipelined round trip of single-key commands (one per
/// node on a cluster, all written before any is read). The scripts take the time from Redis
/// (`TIME`), so all instances share one clock. Owns its client, so it is used by one thread
/// (one store per worker thread).
public final class RedisSessionStore: SessionStore {
    public let client: RedisClient
    /// Prepended to every session id to form its key (`sid_`).
    public let keyPrefix: String
    /// Prepended to `{user}` for the index and generation keys (`sidu_`).
    public let userKeyPrefix: String

    /// Expiry of a user's index and generation keys, refreshed on every write: no session lives
    /// longer than the absolute lifetime (plus a rotation's grace), so an index idle that long
    /// holds only dead entries and goes away by itself.
    public let indexLifetimeSeconds: Int

    /// Replicas a security write waits for (`WAIT`): `nil` is 1 once the deployment has shown a replica;
    /// 0 turns waiting off.
    public let waitReplicas: Int?
    /// Bound on that wait, in milliseconds (below the command timeout).
    public let waitTimeoutMilliseconds: Int

    public init(client: RedisClient, keyPrefix: String = "sid_", userKeyPrefix: String = "sidu_",
                indexLifetimeSeconds: Int = 12 * 3600 + 60, waitReplicas: Int? = nil, waitTimeoutMilliseconds: Int = 200) {
        self.client = client
        self.keyPrefix = keyPrefix
        self.userKeyPrefix = userKeyPrefix
        self.indexLifetimeSeconds = indexLifetimeSeconds
        self.waitReplicas = waitReplicas
        self.waitTimeoutMilliseconds = waitTimeoutMilliseconds
    }

    /// A store over a client of `configuration`.
    public convenience init(configuration: RedisConfiguration, keyPrefix: String = "sid_", userKeyPrefix: String = "sidu_") {
        self.init(client: RedisClient(configuration: configuration), keyPrefix: keyPrefix, userKeyPrefix: userKeyPrefix)
    }

    /// The Redis key of a session.
    public func key(for id: SessionID) -> String { keyPrefix + id.rawValue }

    /// The Redis key of a user's session index.
    public func indexKey(_ user: String) -> String { userKeyPrefix + "{" + user + "}:sessions" }

    /// The Redis key of a user's revocation generation.
    public func generationKey(_ user: String) -> String { userKeyPrefix + "{" + user + "}:gen" }

    // MARK: - Sessions

    public func increment(_ field: String, by amount: Int64, in id: SessionID, timeouts: SessionTimeouts) throws(SessionStoreError) -> StoreLookup<Int64> {
        let prefix = keyPrefix
        let reply = try run(Self.incrementScript, id) { command in
            command.append(concatenating: prefix, id.rawValue)
            command.append(timeouts.idleSeconds)
            command.append(field)
            command.append(amount)
        }
        return try Self.lookup(reply) { elements throws(SessionStoreError) in
            guard elements.count >= 2, let value = elements[1].integer else { throw .failed("increment: unexpected reply") }
            return value
        }
    }

    public func load(_ id: SessionID, timeouts: SessionTimeouts, touch: Bool, incrementing field: String?) throws(SessionStoreError) -> StoreLookup<SessionRecord> {
        let reply = try run(Self.loadScript, id) { command in
            Self.loadArguments(&command, key: self.key(for: id), timeouts: timeouts, touch: touch, incrementing: field)
        }
        return try Self.record(reply, id: id)
    }

    public func loadMany(_ ids: [SessionID], timeouts: SessionTimeouts) throws(SessionStoreError) -> [SessionRecord?] {
        let calls = ids.map { id in
            RedisScriptCall(Self.loadScript, keyCount: 1, routingKey: key(for: id)) { command in
                Self.loadArguments(&command, key: self.key(for: id), timeouts: timeouts, touch: false, incrementing: nil)
            }
        }
        let replies: [RedisReply]
        do { replies = try client.runPipelined(calls) } catch { throw Self.storeError(error) }
        var records: [SessionRecord?] = []
        records.reserveCapacity(ids.count)
        for (id, reply) in zip(ids, replies) {
            if let error = reply.serverError { throw Self.storeError(.server(error)) }
            if case .found(let record) = try Self.record(reply, id: id) { records.append(record) } else { records.append(nil) }
        }
        return records
    }

    public func create(_ id: SessionID, fields: [(name: String, value: String)], timeouts: SessionTimeouts,
                       limits: SessionLimits) throws(SessionStoreError) -> CreateOutcome {
        let prefix = keyPrefix
        let reply = try run(Self.createScript, id) { command in
            command.append(concatenating: prefix, id.rawValue)
            command.append(timeouts.idleSeconds)
            command.append(timeouts.absoluteSeconds)
            command.append(limits.maxAttributes)
            command.append(limits.maxBytes)
            for field in fields {
                command.append(field.name)
                command.append(field.value)
            }
        }
        guard case .array(let elements) = reply, let status = elements.first?.integer else { throw .failed("create: unexpected reply") }
        switch status {
        case 1:
            guard elements.count >= 2, let now = elements[1].integer else { throw .failed("create: unexpected reply") }
            return .created(now: now)
        case 3: return .tooLarge
        default: return .exists
        }
    }

    public func update(_ id: SessionID, set: [(name: String, value: String)], remove: [String], timeouts: SessionTimeouts,
                       limits: SessionLimits) throws(SessionStoreError) -> StoreLookup<UpdateOutcome> {
        // One value per name (the last), and a name both set and removed is set.
        var merged: [String: String] = [:]
        var order: [String] = []
        for field in set {
            if merged.updateValue(field.value, forKey: field.name) == nil { order.append(field.name) }
        }
        let removals = Array(Set(remove).subtracting(order))
        let prefix = keyPrefix
        let reply = try run(Self.updateScript, id) { command in
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

    public func destroy(_ ids: [SessionID]) throws(SessionStoreError) -> Int {
        let replies = try pipeline(ids.map { (RedisCommand("DEL", key(for: $0)), key(for: $0)) })
        var existed = 0
        for reply in replies {
            if let error = reply.serverError { throw Self.storeError(.server(error)) }
            existed += Int(reply.integer ?? 0)
        }
        return existed
    }

    public func rotate(_ id: SessionID, to newID: SessionID, leaving mark: RotationMark, graceSeconds: Int) throws(SessionStoreError) -> StoreLookup<[String: String]> {
        let prefix = keyPrefix
        let reply = try run(Self.rotateScript, id) { command in
            command.append(concatenating: prefix, id.rawValue)
            command.append(newID.rawValue)
            command.append(mark == .alias ? "alias" : "superseded")
            command.append(graceSeconds)
        }
        return try Self.lookup(reply) { elements throws(SessionStoreError) in
            guard elements.count >= 2, case .array(let pairs) = elements[1] else { throw .failed("rotate: unexpected reply") }
            return Self.dictionary(pairs)
        }
    }

    // MARK: - Users

    public func userGeneration(_ user: String) throws(SessionStoreError) -> Int64 {
        let reply = try send(RedisCommand("GET", generationKey(user)), key: generationKey(user))
        if case .null = reply { return 0 }
        guard let text = reply.text, let value = Int64(text) else { throw .failed("generation: unexpected reply") }
        return value
    }

    public func index(handle: String, id: SessionID, of user: String, generation: Int64) throws(SessionStoreError) -> Int? {
        let reply = try run(Self.indexScript, keys: [indexKey(user), generationKey(user)],
                            arguments: [handle, id.rawValue, String(generation), String(indexLifetimeSeconds)])
        guard let count = reply.integer else { throw .failed("index: unexpected reply") }
        return count < 0 ? nil : Int(count)
    }

    public func indexedSessions(of user: String) throws(SessionStoreError) -> [UserIndexEntry] {
        guard case .array(let pairs) = try send(RedisCommand("HGETALL", indexKey(user)), key: indexKey(user)) else {
            throw .failed("index: unexpected reply")
        }
        return Self.dictionary(pairs).compactMap { Self.indexEntry(handle: $0.key, value: $0.value) }.sorted { $0.handle < $1.handle }
    }

    public func unindex(_ entries: [(handle: String, id: SessionID)], of user: String) throws(SessionStoreError) {
        guard !entries.isEmpty else { return }
        var arguments: [String] = []
        for entry in entries {
            arguments.append(entry.handle)
            arguments.append(entry.id.rawValue)
        }
        _ = try run(Self.unindexScript, keys: [indexKey(user)], arguments: arguments)
    }

    public func revokeAll(of user: String) throws(SessionStoreError) -> [SessionID] {
        let reply = try run(Self.revokeScript, keys: [indexKey(user), generationKey(user)], arguments: [String(indexLifetimeSeconds)])
        guard case .array(let values) = reply else { throw .failed("revoke: unexpected reply") }
        return values.compactMap { $0.text.flatMap { Self.indexEntry(handle: "", value: $0)?.id } }
    }

    public func checkHealth() throws(SessionStoreError) {
        do { try client.checkHealth() } catch { throw Self.storeError(error) }
    }

    public func confirmWrites() throws(SessionStoreError) -> WriteConfirmation {
        guard waitReplicas != 0 else { return .notReplicated }
        let outcome: ReplicationOutcome
        do { outcome = try client.waitForReplicas(waitReplicas, timeoutMilliseconds: waitTimeoutMilliseconds) } catch { throw Self.storeError(error) }
        if outcome.required == 0 { return .notReplicated }
        return outcome.isConfirmed ? .confirmed : .unconfirmed(required: outcome.required, acknowledged: outcome.acknowledged)
    }

    // MARK: - Helpers

    /// An index entry as stored under its handle: `<indexed at, µs>:<id>`.
    static func indexEntry(handle: String, value: String) -> UserIndexEntry? {
        guard let colon = value.firstIndex(of: ":"), let indexedAt = Int64(value[..<colon]),
              let id = SessionID(validating: value[value.index(after: colon)...]) else { return nil }
        return UserIndexEntry(handle: handle, id: id, indexedAt: indexedAt)
    }

    private static func loadArguments(_ command: inout RedisCommand, key: String, timeouts: SessionTimeouts, touch: Bool, incrementing field: String?) {
        command.append(key)
        command.append(timeouts.idleSeconds)
        command.append(touch ? 1 : 0)
        command.append(field ?? "")
    }

    private static func record(_ reply: RedisReply, id: SessionID) throws(SessionStoreError) -> StoreLookup<SessionRecord> {
        try lookup(reply) { elements throws(SessionStoreError) in
            guard elements.count >= 3, case .array(let pairs) = elements[1], let now = elements[2].integer else {
                throw .failed("load: unexpected reply")
            }
            return SessionRecord(id: id, fields: dictionary(pairs), now: now)
        }
    }

    /// Maps a script's `{status, …}` reply: 0 missing, 2 moved (alias), 4 superseded, 1 or 3 found.
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
        case 4: return .superseded
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

    private func send(_ command: RedisCommand, key: String) throws(SessionStoreError) -> RedisReply {
        let reply: RedisReply
        do { reply = try client.send(command, key: key) } catch { throw Self.storeError(error) }
        if let error = reply.serverError { throw Self.storeError(.server(error)) }
        return reply
    }

    private func pipeline(_ commands: [(RedisCommand, String)]) throws(SessionStoreError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        do { return try client.pipeline(commands.map { ($0.0, $0.1) }) } catch { throw Self.storeError(error) }
    }

    /// Runs a one-key session script on the session `id`; `addArguments` appends the key first.
    private func run(_ script: RedisScript, _ id: SessionID, _ addArguments: (inout RedisCommand) -> Void) throws(SessionStoreError) -> RedisReply {
        do {
            return try client.run(script, keyCount: 1, routingKey: key(for: id), addArguments)
        } catch {
            throw Self.storeError(error)
        }
    }

    private func run(_ script: RedisScript, keys: [String], arguments: [String]) throws(SessionStoreError) -> RedisReply {
        do {
            return try client.run(script, keys: keys, arguments: arguments)
        } catch {
            throw Self.storeError(error)
        }
    }

    /// Connection trouble and the server's "not now" answers are outages (503); any other error
    /// reply — a script error, a wrong type — is a failure (500), never reported as an outage.
    static func storeError(_ error: RedisError) -> SessionStoreError {
        switch error {
        case .connectFailed, .timedOut, .connectionLost: return .unavailable(error.description)
        case .server(let serverError) where ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY"].contains(serverError.code):
            return .unavailable(error.description)
        case .server, .unexpectedReply, .invalidCommand: return .failed(error.description)
        }
    }
}

extension RotationRetry {
    /// For `RedisSessionStore`: a rotation writes the alias, then the copy, one round trip
    /// apart; a request that follows the alias in between looks again up to 5 times, 1 ms apart.
    public static let redis = RotationRetry(attempts: 5, pause: { _ in usleep(1000) })
}
