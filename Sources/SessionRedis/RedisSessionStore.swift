import Glibc
import RedisClient
import SessionCore

/// A `SessionStore` keeping each session as a Redis hash `<prefix><id>` with a TTL, and per user
/// a hash `<userPrefix>{<user>}:sessions` (handle → `<indexed at, µs>:<id>`) and a counter
/// `<userPrefix>{<user>}:gen`, both with TTLs. `RedisSessionLayout` says how names and values
/// change with encryption at rest (sealed values, user pseudonyms in place of user names) and
/// hashed ids (digests in place of ids); the scripts are the same for every layout.
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
    /// Key names, and what is sealed or hashed at rest.
    public let layout: RedisSessionLayout
    /// Prepended to every session reference to form its key (`sid_`).
    public var keyPrefix: String { layout.keyPrefix }
    /// Prepended to `{user}` for the index and generation keys (`sidu_`).
    public var userKeyPrefix: String { layout.userKeyPrefix }

    /// Expiry of a user's index and generation keys, refreshed on every write: no session lives
    /// longer than the absolute lifetime (plus a rotation's grace), so an index idle that long
    /// holds only dead entries and goes away by itself.
    public let indexLifetimeSeconds: Int

    /// Replicas a security write waits for (`WAIT`): `nil` is 1 once the deployment has shown a replica;
    /// 0 turns waiting off.
    public let waitReplicas: Int?
    /// Bound on that wait, in milliseconds (below the command timeout).
    public let waitTimeoutMilliseconds: Int

    public init(client: RedisClient, layout: RedisSessionLayout, indexLifetimeSeconds: Int = 12 * 3600 + 60,
                waitReplicas: Int? = nil, waitTimeoutMilliseconds: Int = 200) {
        self.client = client
        self.layout = layout
        self.indexLifetimeSeconds = indexLifetimeSeconds
        self.waitReplicas = waitReplicas
        self.waitTimeoutMilliseconds = waitTimeoutMilliseconds
    }

    /// A store with the default layout (nothing sealed or hashed) under these prefixes.
    public convenience init(client: RedisClient, keyPrefix: String = "sid_", userKeyPrefix: String = "sidu_",
                            indexLifetimeSeconds: Int = 12 * 3600 + 60, waitReplicas: Int? = nil, waitTimeoutMilliseconds: Int = 200) {
        self.init(client: client, layout: RedisSessionLayout(keyPrefix: keyPrefix, userKeyPrefix: userKeyPrefix),
                  indexLifetimeSeconds: indexLifetimeSeconds, waitReplicas: waitReplicas, waitTimeoutMilliseconds: waitTimeoutMilliseconds)
    }

    /// A store over a client of `configuration`.
    public convenience init(configuration: RedisConfiguration, keyPrefix: String = "sid_", userKeyPrefix: String = "sidu_") {
        self.init(client: RedisClient(configuration: configuration), keyPrefix: keyPrefix, userKeyPrefix: userKeyPrefix)
    }

    /// The Redis key of a session.
    public func key(for id: SessionID) -> String { layout.key(for: id) }

    /// The Redis key of a user's session index (the one written).
    public func indexKey(_ user: String) throws(SessionStoreError) -> String { layout.indexKey(named: try layout.userNames(of: user)[0]) }

    /// The Redis key of a user's revocation generation (the one written and read).
    public func generationKey(_ user: String) throws(SessionStoreError) -> String {
        layout.generationKey(named: try layout.userNames(of: user)[0])
    }

    public func reference(to id: SessionID) -> SessionReference { layout.reference(to: id) }

    // MARK: - Sessions

    public func increment(_ field: String, by amount: Int64, in id: SessionID, timeouts: SessionTimeouts) throws(SessionStoreError) -> StoreLookup<Int64> {
        let session = reference(to: id)
        let reply = try run(Self.incrementScript, key: layout.key(for: session)) { command in
            Self.incrementArguments(&command, session: session, layout: layout, timeouts: timeouts, field: field, amount: amount)
        }
        return try incremented(reply, at: id)
    }

    public func load(_ id: SessionID, timeouts: SessionTimeouts, touch: Bool, incrementing field: String?) throws(SessionStoreError) -> StoreLookup<SessionRecord> {
        let session = reference(to: id)
        let reply = try run(Self.loadScript, key: layout.key(for: session)) { command in
            Self.loadArguments(&command, session: session, layout: layout, timeouts: timeouts, touch: touch, incrementing: field)
        }
        return try loaded(reply, at: id, session: session)
    }

    /// Several calls in one pipelined round trip (one per node on a cluster), each built and
    /// read by the same code as its own method; a single call goes through that method. On a
    /// cluster, a node that fails fails only the calls whose sessions it holds.
    public func answer(_ calls: [SessionStoreCall], timeouts: SessionTimeouts) -> [Result<SessionStoreAnswer, SessionStoreError>] {
        guard calls.count > 1 else { return answerEach(calls, timeouts: timeouts) }
        var answers = [Result<SessionStoreAnswer, SessionStoreError>?](repeating: nil, count: calls.count)
        var sent: [Int] = []
        var scriptCalls: [RedisScriptCall] = []
        sent.reserveCapacity(calls.count)
        scriptCalls.reserveCapacity(calls.count)
        for (index, call) in calls.enumerated() {
            do {
                scriptCalls.append(try scriptCall(call, timeouts: timeouts))
                sent.append(index)
            } catch {
                answers[index] = .failure(error)
            }
        }
        do {
            let replies = try client.runPipelinedEach(scriptCalls)
            for (index, reply) in zip(sent, replies) {
                answers[index] = Result { () throws(SessionStoreError) -> SessionStoreAnswer in
                    switch reply {
                    case .success(let reply): return try decode(reply, of: calls[index])
                    case .failure(let error): throw Self.storeError(error)
                    }
                }
            }
        } catch {
            let failure = Self.storeError(error)
            for index in sent { answers[index] = .failure(failure) }
        }
        return answers.map { $0 ?? .failure(.failed("no answer")) }
    }

    /// The script call that answers `call` (fails only when a value cannot be sealed).
    private func scriptCall(_ call: SessionStoreCall, timeouts: SessionTimeouts) throws(SessionStoreError) -> RedisScriptCall {
        switch call {
        case .increment(let field, let amount, let id):
            let session = reference(to: id)
            return RedisScriptCall(Self.incrementScript, keyCount: 1, routingKey: layout.key(for: session)) { command in
                Self.incrementArguments(&command, session: session, layout: layout, timeouts: timeouts, field: field, amount: amount)
            }
        case .load(let id, let touch, let field):
            let session = reference(to: id)
            return RedisScriptCall(Self.loadScript, keyCount: 1, routingKey: layout.key(for: session)) { command in
                Self.loadArguments(&command, session: session, layout: layout, timeouts: timeouts, touch: touch, incrementing: field)
            }
        case .create(let id, let fields, let limits):
            let session = reference(to: id)
            let stored = try layout.storedFields(fields, in: session)
            return RedisScriptCall(Self.createScript, keyCount: 1, routingKey: layout.key(for: session)) { command in
                Self.createArguments(&command, session: session, layout: layout, timeouts: timeouts, limits: limits, stored: stored)
            }
        }
    }

    /// The answer to `call` in its script's `reply`, read as its own method reads it.
    private func decode(_ reply: RedisReply, of call: SessionStoreCall) throws(SessionStoreError) -> SessionStoreAnswer {
        if let error = reply.serverError { throw Self.storeError(.server(error)) }
        switch call {
        case .increment(_, _, let id): return .incremented(try incremented(reply, at: id))
        case .load(let id, _, _): return .loaded(try loaded(reply, at: id, session: reference(to: id)))
        case .create: return .created(try Self.createOutcome(reply))
        }
    }

    public func loadMany(referenced sessions: [SessionReference], timeouts: SessionTimeouts) throws(SessionStoreError) -> [StoredSession?] {
        let calls = sessions.map { session in
            RedisScriptCall(Self.loadScript, keyCount: 1, routingKey: layout.key(for: session)) { command in
                Self.loadArguments(&command, session: session, layout: layout, timeouts: timeouts, touch: false, incrementing: nil)
            }
        }
        let replies: [RedisReply]
        do { replies = try client.runPipelined(calls) } catch { throw Self.storeError(error) }
        var loaded: [StoredSession?] = []
        loaded.reserveCapacity(sessions.count)
        for (session, reply) in zip(sessions, replies) {
            if let error = reply.serverError { throw Self.storeError(.server(error)) }
            guard case .array(let elements) = reply, let status = elements.first?.integer else { throw .failed("load: unexpected reply") }
            // Only a live session (1) is returned: an alias (2) or tombstone (4) is not one, and
            // following an alias needs the old id, which a reference does not give.
            guard status == 1 else {
                loaded.append(nil)
                continue
            }
            let (fields, now) = try self.fields(elements, of: session)
            loaded.append(StoredSession(reference: session, fields: fields, now: now))
        }
        return loaded
    }

    public func create(_ id: SessionID, fields: [(name: String, value: String)], timeouts: SessionTimeouts,
                       limits: SessionLimits) throws(SessionStoreError) -> CreateOutcome {
        let session = reference(to: id)
        let stored = try layout.storedFields(fields, in: session)
        let reply = try run(Self.createScript, key: layout.key(for: session)) { command in
            Self.createArguments(&command, session: session, layout: layout, timeouts: timeouts, limits: limits, stored: stored)
        }
        return try Self.createOutcome(reply)
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
        let session = reference(to: id)
        let key = layout.key(for: session)
        let stored = try layout.storedFields(order.map { ($0, merged[$0] ?? "") }, in: session)
        let sealed = layout.sealsValues
        let reply = try run(Self.updateScript, key: key) { command in
            command.append(key)
            command.append(timeouts.idleSeconds)
            command.append(timeouts.effectiveTouchInterval)
            command.append(limits.maxAttributes)
            command.append(limits.maxBytes)
            command.append(sealed ? "1" : "0")
            command.append(stored.count)
            for field in stored {
                command.append(field.name)
                command.append(field.value)
            }
            for name in removals { command.append(name) }
        }
        return try lookup(reply, at: id) { elements throws(SessionStoreError) in
            guard let status = elements.first?.integer else { throw .failed("update: unexpected reply") }
            return status == 3 ? .tooLarge : .applied
        }
    }

    public func destroy(referenced sessions: [SessionReference]) throws(SessionStoreError) -> Int {
        let keys = sessions.map(layout.key(for:))
        let replies = try pipeline(keys.map { (RedisCommand("DEL", $0), $0) })
        var existed = 0
        for reply in replies {
            if let error = reply.serverError { throw Self.storeError(.server(error)) }
            existed += Int(reply.integer ?? 0)
        }
        return existed
    }

    public func rotate(_ id: SessionID, to newID: SessionID, leaving mark: RotationMark, graceSeconds: Int) throws(SessionStoreError) -> StoreLookup<[String: String]> {
        let session = reference(to: id)
        let key = layout.key(for: session)
        // The new id goes to Redis only inside the alias, and only when an alias is left.
        let pointer = mark == .alias && graceSeconds > 0 ? try layout.aliasValue(to: newID, from: id) : ""
        let reply = try run(Self.rotateScript, key: key) { command in
            command.append(key)
            command.append(pointer)
            command.append(mark == .alias ? "alias" : "superseded")
            command.append(graceSeconds)
        }
        return try lookup(reply, at: id) { elements throws(SessionStoreError) in
            guard elements.count >= 2, case .array(let pairs) = elements[1] else { throw .failed("rotate: unexpected reply") }
            return layout.openedFields(Self.dictionary(pairs), in: session)
        }
    }

    // MARK: - Users
    //
    // A user's keys may exist under several names (with a sealer, one pseudonym per key of the
    // ring): writes go to the first, reads and revocations to all, each name's pair of keys
    // sharing one hash tag. One round trip either way (pipelined for several names).

    public func userGeneration(_ user: String) throws(SessionStoreError) -> Int64 {
        let key = try generationKey(user)
        let reply = try send(RedisCommand("GET", key), key: key)
        if case .null = reply { return 0 }
        guard let text = reply.text, let value = Int64(text) else { throw .failed("generation: unexpected reply") }
        return value
    }

    public func index(handle: String, id: SessionID, of user: String, generation: Int64) throws(SessionStoreError) -> Int? {
        let names = try layout.userNames(of: user)
        let first = names[0]
        let index = RedisScriptCall(Self.indexScript, keyCount: 2, routingKey: layout.indexKey(named: first)) { command in
            command.append(self.layout.indexKey(named: first))
            command.append(self.layout.generationKey(named: first))
            command.append(handle)
            command.append(self.reference(to: id).rawValue)
            command.append(generation)
            command.append(self.indexLifetimeSeconds)
        }
        // Entries still under the other names count too (the per-user cap sees them all).
        let sizes = names.dropFirst().map { name in
            RedisScriptCall(Self.indexSizeScript, keyCount: 1, routingKey: layout.indexKey(named: name)) { command in
                command.append(self.layout.indexKey(named: name))
            }
        }
        let replies = try runPipelined([index] + sizes)
        guard let count = replies[0].integer else { throw .failed("index: unexpected reply") }
        if count < 0 { return nil }
        return Int(count) + replies.dropFirst().reduce(0) { $0 + Int($1.integer ?? 0) }
    }

    public func indexedSessions(of user: String) throws(SessionStoreError) -> [UserIndexEntry] {
        let keys = try layout.userNames(of: user).map(layout.indexKey(named:))
        var entries: [UserIndexEntry] = []
        for reply in try pipeline(keys.map { (RedisCommand("HGETALL", $0), $0) }) {
            if let error = reply.serverError { throw Self.storeError(.server(error)) }
            guard case .array(let pairs) = reply else { throw .failed("index: unexpected reply") }
            entries += Self.dictionary(pairs).compactMap { indexEntry(handle: $0.key, value: $0.value) }
        }
        return entries.sorted { ($0.handle, $0.indexedAt) < ($1.handle, $1.indexedAt) }
    }

    public func unindex(_ entries: [(handle: String, session: SessionReference)], of user: String,
                        olderThan minimumAgeSeconds: Int) throws(SessionStoreError) {
        guard !entries.isEmpty else { return }
        var arguments = [String(max(0, minimumAgeSeconds))]
        for entry in entries {
            arguments.append(entry.handle)
            arguments.append(entry.session.rawValue)
        }
        let calls = try layout.userNames(of: user).map { name in
            RedisScriptCall(Self.unindexScript, keyCount: 1, routingKey: layout.indexKey(named: name)) { command in
                command.append(self.layout.indexKey(named: name))
                for argument in arguments { command.append(argument) }
            }
        }
        _ = try runPipelined(calls)
    }

    public func revokeAll(of user: String) throws(SessionStoreError) -> [UserIndexEntry] {
        let calls = try layout.userNames(of: user).map { name in
            RedisScriptCall(Self.revokeScript, keyCount: 2, routingKey: layout.indexKey(named: name)) { command in
                command.append(self.layout.indexKey(named: name))
                command.append(self.layout.generationKey(named: name))
                command.append(self.indexLifetimeSeconds)
            }
        }
        var entries: [UserIndexEntry] = []
        for reply in try runPipelined(calls) {
            guard case .array(let pairs) = reply else { throw .failed("revoke: unexpected reply") }
            entries += Self.dictionary(pairs).compactMap { indexEntry(handle: $0.key, value: $0.value) }
        }
        return entries.sorted { ($0.handle, $0.indexedAt) < ($1.handle, $1.indexedAt) }
    }

    public func claimNonce(_ nonce: String, expires: Int64, maximumLifetimeSeconds: Int64) throws(SessionStoreError) -> NonceClaim {
        let key = layout.nonceKey(nonce)
        let call = RedisScriptCall(Self.claimNonceScript, keyCount: 1, routingKey: key) { command in
            command.append(key)
            command.append(String(expires))
            command.append(String(maximumLifetimeSeconds))
        }
        guard case .integer(let status) = try runPipelined([call])[0] else { throw .failed("nonce: unexpected reply") }
        switch status {
        case 1: return .claimed
        case 2: return .used
        case 3: return .expired
        case 4: return .tooFarAhead
        default: throw .failed("nonce: unexpected status \(status)")
        }
    }

    public func countLoginAttempt(_ account: String, limit: Int, windowSeconds: Int) throws(SessionStoreError) -> LoginAttempt {
        let key = layout.loginAttemptsKey(account)
        let call = RedisScriptCall(Self.countLoginAttemptScript, keyCount: 1, routingKey: key) { command in
            command.append(key)
            command.append(String(limit))
            command.append(String(max(1, windowSeconds)))
        }
        guard case .array(let parts) = try runPipelined([call])[0], parts.count == 2,
              case .integer(let counted) = parts[0], case .integer(let left) = parts[1] else { throw .failed("login attempt: unexpected reply") }
        return counted == 1 ? .counted : .refused(secondsLeft: Int(left))
    }

    public func uncountLoginAttempt(_ account: String) throws(SessionStoreError) {
        let key = layout.loginAttemptsKey(account)
        _ = try runPipelined([RedisScriptCall(Self.uncountLoginAttemptScript, keyCount: 1, routingKey: key) { command in command.append(key) }])
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

    /// An index entry as stored under its handle: `<indexed at, µs>:<reference>`.
    func indexEntry(handle: String, value: String) -> UserIndexEntry? {
        guard let colon = value.firstIndex(of: ":"), let indexedAt = Int64(value[..<colon]),
              let session = layout.reference(parsing: value[value.index(after: colon)...]) else { return nil }
        return UserIndexEntry(handle: handle, session: session, indexedAt: indexedAt)
    }

    private static func createArguments(_ command: inout RedisCommand, session: SessionReference, layout: RedisSessionLayout,
                                        timeouts: SessionTimeouts, limits: SessionLimits, stored: [(name: String, value: String)]) {
        command.append(concatenating: layout.keyPrefix, session.rawValue)
        command.append(timeouts.idleSeconds)
        command.append(timeouts.absoluteSeconds)
        command.append(limits.maxAttributes)
        command.append(limits.maxBytes)
        command.append(layout.sealsValues ? "1" : "0")
        for field in stored {
            command.append(field.name)
            command.append(field.value)
        }
    }

    /// The create script's `{status, now}`: 1 created, 3 too large, otherwise the id exists.
    private static func createOutcome(_ reply: RedisReply) throws(SessionStoreError) -> CreateOutcome {
        guard case .array(let elements) = reply, let status = elements.first?.integer else { throw .failed("create: unexpected reply") }
        switch status {
        case 1:
            guard elements.count >= 2, let now = elements[1].integer else { throw .failed("create: unexpected reply") }
            return .created(now: now)
        case 3: return .tooLarge
        default: return .exists
        }
    }

    private static func incrementArguments(_ command: inout RedisCommand, session: SessionReference, layout: RedisSessionLayout,
                                           timeouts: SessionTimeouts, field: String, amount: Int64) {
        command.append(concatenating: layout.keyPrefix, session.rawValue)
        command.append(timeouts.idleSeconds)
        command.append(field)
        command.append(amount)
        command.append(timeouts.effectiveTouchInterval)
    }

    /// The increment script's reply about `id`.
    private func incremented(_ reply: RedisReply, at id: SessionID) throws(SessionStoreError) -> StoreLookup<Int64> {
        try lookup(reply, at: id) { elements throws(SessionStoreError) in
            guard elements.count >= 2, let value = elements[1].integer else { throw .failed("increment: unexpected reply") }
            return value
        }
    }

    /// The load script's reply about `id`.
    private func loaded(_ reply: RedisReply, at id: SessionID, session: SessionReference) throws(SessionStoreError) -> StoreLookup<SessionRecord> {
        try lookup(reply, at: id) { elements throws(SessionStoreError) in
            let (fields, now) = try self.fields(elements, of: session)
            return SessionRecord(id: id, fields: fields, now: now)
        }
    }

    private static func loadArguments(_ command: inout RedisCommand, session: SessionReference, layout: RedisSessionLayout,
                                      timeouts: SessionTimeouts, touch: Bool, incrementing field: String?) {
        command.append(concatenating: layout.keyPrefix, session.rawValue)
        command.append(timeouts.idleSeconds)
        command.append(touch ? 1 : 0)
        command.append(field ?? "")
        command.append(timeouts.effectiveTouchInterval)
    }

    /// The opened fields and the clock of a load script's `{1, {field, value, …}, now}`.
    private func fields(_ elements: [RedisReply], of session: SessionReference) throws(SessionStoreError) -> ([String: String], Int64) {
        guard elements.count >= 3, case .array(let pairs) = elements[1], let now = elements[2].integer else {
            throw .failed("load: unexpected reply")
        }
        return (layout.openedFields(Self.dictionary(pairs), in: session), now)
    }

    /// Maps a script's `{status, …}` reply about the session `id`: 0 missing, 2 moved (alias),
    /// 4 superseded, 1 or 3 found. An alias whose target does not open or parse is a failure,
    /// never followed.
    private func lookup<Value>(_ reply: RedisReply, at id: SessionID, _ found: ([RedisReply]) throws(SessionStoreError) -> Value)
        throws(SessionStoreError) -> StoreLookup<Value> {
        guard case .array(let elements) = reply, let status = elements.first?.integer else {
            throw .failed("script returned an unexpected reply")
        }
        switch status {
        case 0: return .missing
        case 2:
            guard elements.count >= 2, let text = elements[1].text, let target = layout.aliasTarget(text, from: id) else {
                throw .failed("alias without a valid target")
            }
            return .moved(target)
        case 4: return .superseded
        default:
            return .found(try found(elements))
        }
    }

    /// Name/value pairs as a dictionary; a name given twice keeps its last value (the load
    /// script appends the fields it changed after those it read).
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

    /// Runs a one-key session script on `key`; `addArguments` appends the key first. `key` is
    /// evaluated only where it routes the command (a cluster): the scripts on the hot path
    /// write the key into the command themselves, so elsewhere no key string is built.
    private func run(_ script: RedisScript, key: @autoclosure () -> String, _ addArguments: (inout RedisCommand) -> Void) throws(SessionStoreError) -> RedisReply {
        do {
            return try client.run(script, keyCount: 1, routingKey: key(), addArguments)
        } catch {
            throw Self.storeError(error)
        }
    }

    /// Runs script calls pipelined; any server error in the replies is thrown.
    private func runPipelined(_ calls: [RedisScriptCall]) throws(SessionStoreError) -> [RedisReply] {
        let replies: [RedisReply]
        do { replies = try client.runPipelined(calls) } catch { throw Self.storeError(error) }
        if let error = replies.lazy.compactMap(\.serverError).first { throw Self.storeError(.server(error)) }
        return replies
    }

    /// Connection trouble and the server's "not now" answers are outages (503) — a cluster
    /// redirection still unresolved at the command timeout (a slot moving) among them —, a Redis full at
    /// its `maxmemory` too (writes resume as sessions expire), and so is a Redis
    /// that refuses this instance's credentials (a password or ACL out of step with Redis's, which
    /// the operator must fix; named as such in the log); any other error reply — a script error,
    /// a wrong type — is a failure (500), never reported as an outage.
    static func storeError(_ error: RedisError) -> SessionStoreError {
        switch error {
        case .connectFailed, .timedOut, .connectionLost, .tlsRefused: return .unavailable(error.description)
        case .server(let serverError) where serverError.refusesCredentials:
            return .unavailable("Redis refused this instance's credentials (\(serverError.loggableMessage)): \(serverError.credentialAdvice)")
        case .server(let serverError) where serverError.refusesDatabase:
            return .unavailable("Redis refuses the database of the URL (\(serverError.loggableMessage)): check the /db at the end of --redis-url")
        case .server(let serverError) where ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "NOREPLICAS", "MOVED", "ASK"].contains(serverError.code):
            return .unavailable(error.description)
        case .server(let serverError) where serverError.code == "OOM":
            return .unavailable("Redis is at its maxmemory and evicts nothing (\(serverError.loggableMessage)): writes wait until sessions expire or memory is added")
        case .server, .unexpectedReply, .invalidCommand: return .failed(error.description)
        }
    }
}

extension RotationRetry {
    /// For `RedisSessionStore`: a rotation writes the alias, then the copy, one round trip
    /// apart; a request that follows the alias in between looks again up to 5 times, 1 ms apart.
    /// A copy that did not come is not waited for again for 10 s, the default rotation grace
    /// (by any worker of the process; the look-up itself is still made, so a copy that comes
    /// late is found).
    public static let redis = RotationRetry(attempts: 5, pause: { _ in usleep(1000) },
                                            memory: MissingCopies(lifetimeMilliseconds: 10_000, now: { monotonicMilliseconds() }))
}

private func monotonicMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
