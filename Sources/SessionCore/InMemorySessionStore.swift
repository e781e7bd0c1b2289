/// A `SessionStore` in process memory with a caller-supplied clock: for unit tests of logic
/// built on sessions. Not shared between processes, so not for production.
public final class InMemorySessionStore: SessionStore {
    private struct Entry {
        var fields: [String: String]
        var expiresAt: Int64
    }

    private var entries: [SessionID: Entry] = [:]
    /// Seconds on the store's clock; tests advance it to expire sessions.
    public var now: Int64 = 0
    /// When set, every call throws this error (to test outage handling).
    public var failure: SessionStoreError?

    public init() {}

    public func increment(_ field: String, by amount: Int64, in id: SessionID, idleTimeoutSeconds: Int) throws(SessionStoreError) -> Int64? {
        if let failure { throw failure }
        guard var entry = entries[id], entry.expiresAt > now else {
            entries[id] = nil
            return nil
        }
        guard let current = Int64(entry.fields[field] ?? "0") else { throw .failed("field is not an integer") }
        let value = current + amount
        entry.fields[field] = String(value)
        entry.expiresAt = now + Int64(idleTimeoutSeconds)
        entries[id] = entry
        return value
    }

    public func create(_ id: SessionID, fields: [(name: String, value: String)], idleTimeoutSeconds: Int) throws(SessionStoreError) -> Bool {
        if let failure { throw failure }
        if let existing = entries[id], existing.expiresAt > now { return false }
        var map: [String: String] = [:]
        for field in fields { map[field.name] = field.value }
        entries[id] = Entry(fields: map, expiresAt: now + Int64(idleTimeoutSeconds))
        return true
    }

    public func checkHealth() throws(SessionStoreError) {
        if let failure { throw failure }
    }

    /// The live session ids, for assertions.
    public var liveSessionIDs: Set<SessionID> {
        Set(entries.filter { $0.value.expiresAt > now }.keys)
    }

    /// A field of a live session, for assertions.
    public func field(_ name: String, of id: SessionID) -> String? {
        guard let entry = entries[id], entry.expiresAt > now else { return nil }
        return entry.fields[name]
    }
}
