/// A `SessionStore` in process memory with a caller-driven clock: for unit tests of logic built
/// on sessions, and the reference the Redis store is checked against. Not shared between
/// processes, so not for production.
public final class InMemorySessionStore: SessionStore {
    private struct Entry {
        var fields: [String: String]
        var expiresAt: Int64
    }

    private var entries: [SessionID: Entry] = [:]
    private var generations: [String: Int64] = [:]
    private var userIndex: [String: [String: SessionID]] = [:]
    /// Seconds on the store's clock; tests advance it to expire sessions.
    public var now: Int64 = 1_000_000
    /// When set, every call throws this error (to test outage handling).
    public var failure: SessionStoreError?

    public init() {}

    private func live(_ id: SessionID) -> Entry? {
        guard let entry = entries[id] else { return nil }
        let absolute = Int64(entry.fields[ReservedField.absoluteExpiry] ?? "") ?? 0
        if entry.expiresAt <= now || (absolute > 0 && absolute <= now) {
            entries[id] = nil
            return nil
        }
        return entry
    }

    private func ttl(_ fields: [String: String], _ timeouts: SessionTimeouts) -> Int64 {
        var ttl = Int64(timeouts.idleSeconds)
        let absolute = Int64(fields[ReservedField.absoluteExpiry] ?? "") ?? 0
        if absolute > 0 { ttl = min(ttl, absolute - now) }
        return ttl
    }

    private func touch(_ id: SessionID, _ entry: inout Entry, _ timeouts: SessionTimeouts) {
        entry.fields[ReservedField.lastSeen] = String(now)
        entry.expiresAt = now + ttl(entry.fields, timeouts)
        entries[id] = entry
    }

    public func increment(_ field: String, by amount: Int64, in id: SessionID, timeouts: SessionTimeouts) throws(SessionStoreError) -> StoreLookup<Counted> {
        if let failure { throw failure }
        guard var entry = live(id) else { return .missing }
        if let alias = entry.fields[ReservedField.alias], let target = SessionID(validating: alias) { return .moved(target) }
        guard let current = Int64(entry.fields[field] ?? "0") else { throw .failed("field is not an integer") }
        entry.fields[field] = String(current + amount)
        touch(id, &entry, timeouts)
        return .found(Counted(value: current + amount, owner: SessionRecord(id: id, fields: entry.fields, now: now).owner))
    }

    public func create(_ id: SessionID, fields: [(name: String, value: String)], timeouts: SessionTimeouts) throws(SessionStoreError) -> Bool {
        if let failure { throw failure }
        if live(id) != nil { return false }
        var map: [String: String] = [
            ReservedField.created: String(now), ReservedField.lastSeen: String(now),
            ReservedField.absoluteExpiry: String(now + Int64(timeouts.absoluteSeconds)),
        ]
        for field in fields { map[field.name] = field.value }
        entries[id] = Entry(fields: map, expiresAt: now + ttl(map, timeouts))
        return true
    }

    public func load(_ id: SessionID, timeouts: SessionTimeouts, touch shouldTouch: Bool) throws(SessionStoreError) -> StoreLookup<SessionRecord> {
        if let failure { throw failure }
        guard var entry = live(id) else { return .missing }
        if let alias = entry.fields[ReservedField.alias], let target = SessionID(validating: alias) { return .moved(target) }
        if shouldTouch { touch(id, &entry, timeouts) }
        return .found(SessionRecord(id: id, fields: entry.fields, now: now))
    }

    public func update(_ id: SessionID, set: [(name: String, value: String)], remove: [String], timeouts: SessionTimeouts,
                       limits: SessionLimits) throws(SessionStoreError) -> StoreLookup<UpdateOutcome> {
        if let failure { throw failure }
        guard var entry = live(id) else { return .missing }
        if let alias = entry.fields[ReservedField.alias], let target = SessionID(validating: alias) { return .moved(target) }
        var changed = entry.fields
        for field in set { changed[field.name] = field.value }
        for name in remove { changed[name] = nil }
        let attributes = changed.filter { !$0.key.hasPrefix("_") }
        let bytes = attributes.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        if attributes.count > limits.maxAttributes || bytes > limits.maxBytes { return .found(.tooLarge) }
        entry.fields = changed
        touch(id, &entry, timeouts)
        return .found(.applied)
    }

    public func destroy(_ id: SessionID) throws(SessionStoreError) -> Bool {
        if let failure { throw failure }
        return entries.removeValue(forKey: id) != nil
    }

    public func beginRotation(of id: SessionID, to newID: SessionID, graceSeconds: Int) throws(SessionStoreError) -> StoreLookup<[String: String]> {
        if let failure { throw failure }
        guard var entry = live(id) else { return .missing }
        if let alias = entry.fields[ReservedField.alias], let target = SessionID(validating: alias) { return .moved(target) }
        let fields = entry.fields
        if graceSeconds > 0 {
            entry.fields[ReservedField.alias] = newID.rawValue
            entry.expiresAt = now + Int64(graceSeconds)
            entries[id] = entry
        } else {
            entries[id] = nil
        }
        return .found(fields)
    }

    public func userGeneration(_ user: String) throws(SessionStoreError) -> Int64 {
        if let failure { throw failure }
        return generations[user] ?? 0
    }

    public func revokeAllSessions(of user: String) throws(SessionStoreError) -> Int64 {
        if let failure { throw failure }
        let next = (generations[user] ?? 0) + 1
        generations[user] = next
        return next
    }

    public func index(_ id: SessionID, handle: String, user: String) throws(SessionStoreError) {
        if let failure { throw failure }
        userIndex[user, default: [:]][handle] = id
    }

    public func indexedSessions(of user: String) throws(SessionStoreError) -> [(handle: String, id: SessionID)] {
        if let failure { throw failure }
        var result: [(handle: String, id: SessionID)] = []
        for (handle, id) in userIndex[user] ?? [:] {
            if live(id) == nil { userIndex[user]?[handle] = nil } else { result.append((handle, id)) }
        }
        return result.sorted { $0.handle < $1.handle }
    }

    public func unindex(handle: String, user: String) throws(SessionStoreError) {
        if let failure { throw failure }
        userIndex[user]?[handle] = nil
    }

    public func checkHealth() throws(SessionStoreError) {
        if let failure { throw failure }
    }

    /// The live session ids, for assertions.
    public var liveSessionIDs: Set<SessionID> {
        Set(entries.keys.filter { live($0) != nil })
    }

    /// A field of a live session, for assertions.
    public func field(_ name: String, of id: SessionID) -> String? {
        live(id)?.fields[name]
    }
}
