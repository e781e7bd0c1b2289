/// A `SessionStore` in process memory with a caller-driven clock: for unit tests of logic built
/// on sessions and of the routes, and the reference the Redis store is checked against by the
/// contract suite. Not shared between processes, so not for production.
public final class InMemorySessionStore: SessionStore {
    private struct Entry {
        var fields: [String: String]
        var expiresAt: Int64
    }

    private struct UserState {
        var generation: Int64 = 0
        var index: [String: UserIndexEntry] = [:]
    }

    private var entries: [SessionID: Entry] = [:]
    private var users: [String: UserState] = [:]
    /// Claimed nonces, with when their record expires.
    private var claimedNonces: [String: Int64] = [:]
    /// Counted login attempts by account: how many, and when their window closes.
    private var attempts: [String: (count: Int, until: Int64)] = [:]
    /// Orders index entries written within one second of the clock.
    private var sequence: Int64 = 0
    /// Seconds on the store's clock; tests advance it to expire sessions.
    public var now: Int64 = 1_000_000
    /// When set, every call throws this error (to test outage handling).
    public var failure: SessionStoreError?
    /// When set, the call with this number (counted by `calls`) fails as unavailable, once: a
    /// connection lost in the middle of an operation of several calls.
    public var failingCall: Int?
    /// Store calls made so far (every call is one round trip of a network store), for tests
    /// that bound the work of a route.
    public private(set) var calls = 0
    /// Batches answered by `answer(_:timeouts:)` (one round trip each for a network store).
    public private(set) var rounds = 0

    public init() {}

    private func begin() throws(SessionStoreError) {
        calls += 1
        if let failure { throw failure }
        if calls == failingCall { throw .unavailable("injected failure of call \(calls)") }
    }

    /// The entry at `id` if it has not expired (expired ones are removed, as Redis would).
    private func current(_ id: SessionID) -> Entry? {
        guard let entry = entries[id] else { return nil }
        let absolute = Int64(entry.fields[ReservedField.absoluteExpiry] ?? "") ?? 0
        if entry.expiresAt <= now || (absolute > 0 && absolute <= now) {
            entries[id] = nil
            return nil
        }
        return entry
    }

    /// The live session at `id`, or the lookup answer for an alias, tombstone or nothing.
    private func live(_ id: SessionID) -> StoreLookup<Entry> {
        guard let entry = current(id) else { return .missing }
        if let alias = entry.fields[ReservedField.alias] {
            return SessionID(validating: alias).map { .moved($0) } ?? .missing
        }
        if entry.fields[ReservedField.superseded] != nil { return .superseded }
        return .found(entry)
    }

    private func ttl(_ fields: [String: String], _ timeouts: SessionTimeouts) -> Int64 {
        var ttl = Int64(timeouts.idleSeconds)
        let absolute = Int64(fields[ReservedField.absoluteExpiry] ?? "") ?? 0
        if absolute > 0 { ttl = min(ttl, absolute - now) }
        return ttl
    }

    /// Stores `entry`, renewing its idle timeout and last-seen time when a touch is due.
    private func touch(_ id: SessionID, _ entry: inout Entry, _ timeouts: SessionTimeouts) {
        if timeouts.touchIsDue(now: now, lastTouched: entry.fields[ReservedField.lastSeen].flatMap { Int64($0) }) {
            entry.fields[ReservedField.lastSeen] = String(now)
            entry.expiresAt = now + ttl(entry.fields, timeouts)
        }
        entries[id] = entry
    }

    public func increment(_ field: String, by amount: Int64, in id: SessionID, timeouts: SessionTimeouts) throws(SessionStoreError) -> StoreLookup<Int64> {
        try begin()
        switch live(id) {
        case .found(var entry):
            guard let value = Int64(entry.fields[field] ?? "0") else { throw .failed("field is not an integer") }
            entry.fields[field] = String(value + amount)
            touch(id, &entry, timeouts)
            return .found(value + amount)
        case .missing: return .missing
        case .moved(let next): return .moved(next)
        case .superseded: return .superseded
        }
    }

    public func load(_ id: SessionID, timeouts: SessionTimeouts, touch shouldTouch: Bool, incrementing field: String?) throws(SessionStoreError) -> StoreLookup<SessionRecord> {
        try begin()
        switch live(id) {
        case .found(var entry):
            if let field {
                guard let value = Int64(entry.fields[field] ?? "0") else { throw .failed("field is not an integer") }
                entry.fields[field] = String(value + 1)
            }
            if shouldTouch || field != nil { touch(id, &entry, timeouts) }
            return .found(SessionRecord(id: id, fields: entry.fields, now: now))
        case .missing: return .missing
        case .moved(let next): return .moved(next)
        case .superseded: return .superseded
        }
    }

    public func answer(_ calls: [SessionStoreCall], timeouts: SessionTimeouts) -> [Result<SessionStoreAnswer, SessionStoreError>] {
        rounds += 1
        return answerEach(calls, timeouts: timeouts)
    }

    /// The id itself: this store keeps ids.
    public func reference(to id: SessionID) -> SessionReference {
        SessionReference(rawValue: id.rawValue)
    }

    public func loadMany(referenced sessions: [SessionReference], timeouts: SessionTimeouts) throws(SessionStoreError) -> [StoredSession?] {
        try begin()
        return sessions.map { session in
            guard let id = SessionID(validating: session.rawValue), case .found(let entry) = live(id) else { return nil }
            return StoredSession(reference: session, fields: entry.fields, now: now)
        }
    }

    public func create(_ id: SessionID, fields: [(name: String, value: String)], timeouts: SessionTimeouts,
                       limits: SessionLimits) throws(SessionStoreError) -> CreateOutcome {
        try begin()
        if current(id) != nil { return .exists }
        var map: [String: String] = [
            ReservedField.created: String(now), ReservedField.absoluteExpiry: String(now + Int64(timeouts.absoluteSeconds)),
        ]
        for field in fields { map[field.name] = field.value }
        map[ReservedField.lastSeen] = String(now)
        guard limits.admits(map) else { return .tooLarge }
        let ttl = ttl(map, timeouts)
        guard ttl > 0 else { return .exists }
        entries[id] = Entry(fields: map, expiresAt: now + ttl)
        return .created(now: now)
    }

    public func update(_ id: SessionID, set: [(name: String, value: String)], remove: [String], timeouts: SessionTimeouts,
                       limits: SessionLimits) throws(SessionStoreError) -> StoreLookup<UpdateOutcome> {
        try begin()
        switch live(id) {
        case .found(var entry):
            var changed = entry.fields
            for field in set { changed[field.name] = field.value }
            for name in remove { changed[name] = nil }
            guard limits.admits(changed) else { return .found(.tooLarge) }
            entry.fields = changed
            touch(id, &entry, timeouts)
            return .found(.applied)
        case .missing: return .missing
        case .moved(let next): return .moved(next)
        case .superseded: return .superseded
        }
    }

    public func destroy(referenced sessions: [SessionReference]) throws(SessionStoreError) -> Int {
        try begin()
        var existed = 0
        for id in sessions.compactMap({ SessionID(validating: $0.rawValue) }) where current(id) != nil {
            entries[id] = nil
            existed += 1
        }
        return existed
    }

    public func rotate(_ id: SessionID, to newID: SessionID, leaving mark: RotationMark, graceSeconds: Int) throws(SessionStoreError) -> StoreLookup<[String: String]> {
        try begin()
        switch live(id) {
        case .found(let entry):
            if graceSeconds > 0 {
                let pointer = mark == .alias ? [ReservedField.alias: newID.rawValue] : [ReservedField.superseded: "1"]
                entries[id] = Entry(fields: pointer, expiresAt: now + Int64(graceSeconds))
            } else {
                entries[id] = nil
            }
            return .found(entry.fields)
        case .missing: return .missing
        case .moved(let next): return .moved(next)
        case .superseded: return .superseded
        }
    }

    public func userGeneration(_ user: String) throws(SessionStoreError) -> Int64 {
        try begin()
        return users[user]?.generation ?? 0
    }

    public func index(handle: String, id: SessionID, of user: String, generation: Int64) throws(SessionStoreError) -> Int? {
        try begin()
        var state = users[user] ?? UserState()
        guard state.generation == generation else { return nil }
        sequence += 1
        state.index[handle] = UserIndexEntry(handle: handle, session: reference(to: id), indexedAt: now * 1_000_000 + sequence % 1_000_000)
        users[user] = state
        return state.index.count
    }

    public func indexedSessions(of user: String) throws(SessionStoreError) -> [UserIndexEntry] {
        try begin()
        return (users[user]?.index.values).map { $0.sorted { $0.handle < $1.handle } } ?? []
    }

    public func unindex(_ entries: [(handle: String, session: SessionReference)], of user: String,
                        olderThan minimumAgeSeconds: Int) throws(SessionStoreError) {
        try begin()
        let youngest = (now - Int64(minimumAgeSeconds)) * 1_000_000 + 999_999
        for entry in entries {
            guard let indexed = users[user]?.index[entry.handle], indexed.session == entry.session else { continue }
            if minimumAgeSeconds > 0 && indexed.indexedAt > youngest { continue }
            users[user]?.index[entry.handle] = nil
        }
    }

    public func revokeAll(of user: String) throws(SessionStoreError) -> [UserIndexEntry] {
        try begin()
        var state = users[user] ?? UserState()
        state.generation += 1
        users[user] = state
        return state.index.values.sorted { $0.handle < $1.handle }
    }

    public func claimNonce(_ nonce: String, expires: Int64, maximumLifetimeSeconds: Int64) throws(SessionStoreError) -> NonceClaim {
        try begin()
        if expires < now { return .expired }
        if expires > now + maximumLifetimeSeconds { return .tooFarAhead }
        if let until = claimedNonces[nonce], until >= now { return .used }
        claimedNonces[nonce] = expires
        return .claimed
    }

    public func countLoginAttempt(_ account: String, limit: Int, windowSeconds: Int) throws(SessionStoreError) -> LoginAttempt {
        try begin()
        if let entry = attempts[account], entry.until > now {
            if entry.count >= limit { return .refused(secondsLeft: Int(entry.until - now)) }
            attempts[account] = (entry.count + 1, entry.until)
        } else {
            attempts[account] = (1, now + Int64(max(1, windowSeconds)))
        }
        return .counted
    }

    public func uncountLoginAttempt(_ account: String) throws(SessionStoreError) {
        try begin()
        if let entry = attempts[account], entry.until > now, entry.count > 0 { attempts[account] = (entry.count - 1, entry.until) }
    }

    public func checkHealth() throws(SessionStoreError) {
        try begin()
    }

    /// What `confirmWrites` answers (tests set it to see how routes report it).
    public var confirmation = WriteConfirmation.notReplicated

    public func confirmWrites() throws(SessionStoreError) -> WriteConfirmation {
        try begin()
        return confirmation
    }

    /// The live session ids, for assertions.
    public var liveSessionIDs: Set<SessionID> {
        Set(entries.keys.filter { if case .found = live($0) { return true } else { return false } })
    }

    /// A field of whatever is stored at `id` (session, alias or tombstone), for assertions.
    public func field(_ name: String, of id: SessionID) -> String? {
        current(id)?.fields[name]
    }
}
