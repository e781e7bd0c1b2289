import Glibc

/// The session lifecycle over any `SessionStore`: resolve a presented id, count a visit, start,
/// change, rotate and end sessions, log users in and out, list and revoke a user's sessions.
/// Knows neither HTTP nor Redis. One per worker thread (it holds the worker's store).
public struct SessionManager<Store: SessionStore> {
    public let store: Store
    public var timeouts: SessionTimeouts
    public var limits: SessionLimits
    /// How long a rotated-away id keeps working as an alias (10 s; 0 ends it at once).
    public var rotationGraceSeconds: Int

    public init(store: Store, timeouts: SessionTimeouts = SessionTimeouts(), limits: SessionLimits = SessionLimits(),
                rotationGraceSeconds: Int = 10) {
        self.store = store
        self.timeouts = timeouts
        self.limits = limits
        self.rotationGraceSeconds = rotationGraceSeconds
    }

    /// The outcome of one `/count` visit.
    public struct Visit: Equatable, Sendable {
        public let sessionID: SessionID
        public let count: Int64
        /// Whether a new session was started (none, malformed, unknown, expired or revoked id).
        public let isNewSession: Bool
    }

    public static var countField: String { "count" }

    // MARK: - Reading

    /// The live session for a presented id: follows a rotation alias once, and ends the
    /// session if its user's sessions were revoked since it was created. `nil` if none.
    public func resolve(_ presented: SessionID?, touch: Bool = true) throws(SessionError) -> SessionRecord? {
        guard let presented,
              let (id, record) = try followingRotation(from: presented, { id throws(SessionStoreError) in
                  try store.load(id, timeouts: timeouts, touch: touch)
              })
        else { return nil }
        return try isRevoked(record.owner, id: id, handle: record.handle) ? nil : record
    }

    /// Counts one visit in the presented session, or starts a new one with count 1.
    /// One store round trip on both paths for anonymous sessions; a logged-in session adds
    /// one for the revocation check.
    public func countVisit(presented: SessionID?) throws(SessionError) -> Visit {
        if let presented,
           let (id, counted) = try followingRotation(from: presented, { id throws(SessionStoreError) in
               try store.increment(Self.countField, by: 1, in: id, timeouts: timeouts)
           }),
           try !isRevoked(counted.owner, id: id, handle: nil) {
            return Visit(sessionID: id, count: counted.value, isNewSession: false)
        }
        let id = try createSession(fields: [(Self.countField, "1")])
        return Visit(sessionID: id, count: 1, isNewSession: true)
    }

    // MARK: - Writing

    /// Starts a new anonymous session. Returns its record.
    public func start(userAgent: String? = nil) throws(SessionError) -> SessionRecord {
        var fields: [(name: String, value: String)] = [(ReservedField.handle, SessionID.generate().rawValue)]
        if let userAgent { fields.append((ReservedField.userAgent, String(userAgent.prefix(256)))) }
        let id = try createSession(fields: fields)
        guard let record = try resolve(id, touch: false) else { throw .store(.failed("session vanished after creation")) }
        return record
    }

    /// Sets and removes application attributes of the session as one atomic delta.
    /// Fails with `.notFound` (and writes nothing) if the session ended meanwhile.
    public func change(_ id: SessionID, set: [(name: String, value: String)] = [], remove: [String] = []) throws(SessionError) {
        for name in set.map(\.name) + remove where !SessionNames.isValidAttribute(name) {
            throw .invalidAttributeName(name)
        }
        guard let (_, outcome) = try followingRotation(from: id, { id throws(SessionStoreError) in
            try store.update(id, set: set, remove: remove, timeouts: timeouts, limits: limits)
        }) else { throw .notFound }
        if outcome == .tooLarge { throw .tooLarge }
    }

    /// Gives the session a new id with the same data (no RENAME: a copy, so both keys may
    /// live on different cluster nodes). The old id stays valid as an alias for the grace
    /// period, so parallel in-flight requests of the browser are not logged out.
    public func regenerate(_ id: SessionID, extra: [(name: String, value: String)] = []) throws(SessionError) -> SessionID {
        let newID = SessionID.generate()
        let copied = try storeCall { () throws(SessionStoreError) in
            try store.beginRotation(of: id, to: newID, graceSeconds: rotationGraceSeconds)
        }
        guard case .found(var fields) = copied else { throw .notFound }
        fields[ReservedField.alias] = nil
        for field in extra { fields[field.name] = field.value }
        let created = try storeCall { () throws(SessionStoreError) in
            try store.create(newID, fields: fields.map { ($0.key, $0.value) }, timeouts: timeouts)
        }
        guard created else { throw .store(.failed("new session id already taken")) }
        if let owner = SessionRecord(id: newID, fields: fields, now: 0).owner, let handle = fields[ReservedField.handle] {
            try storeCall { () throws(SessionStoreError) in try store.index(newID, handle: handle, user: owner.userID) }
        }
        return newID
    }

    /// Ends the session (and removes it from its user's list).
    public func destroy(_ record: SessionRecord) throws(SessionError) {
        _ = try storeCall { () throws(SessionStoreError) in try store.destroy(record.id) }
        if let owner = record.owner {
            try storeCall { () throws(SessionStoreError) in try store.unindex(handle: record.handle, user: owner.userID) }
        }
    }

    // MARK: - Users

    /// Logs `user` in: rotates the presented session (or starts one), marks it with the user and
    /// their current revocation generation, issues a fresh CSRF token and indexes it.
    public func login(user: String, presented: SessionID?, userAgent: String?) throws(SessionError) -> SessionRecord {
        guard SessionNames.isValidUserID(user) else { throw .invalidUserID }
        let generation = try storeCall { () throws(SessionStoreError) in try store.userGeneration(user) }
        var base = try resolve(presented)
        if let previous = base, let owner = previous.owner, owner.userID != user {
            // Another user's session: log them out rather than hand their data to this user.
            try destroy(previous)
            base = nil
        }
        if base == nil { base = try start(userAgent: userAgent) }
        guard let current = base else { throw .notFound }
        var extra: [(name: String, value: String)] = [
            (ReservedField.user, user), (ReservedField.userGeneration, String(generation)),
            (ReservedField.csrfToken, SessionID.generate().rawValue),
        ]
        if current.handle.isEmpty { extra.append((ReservedField.handle, SessionID.generate().rawValue)) }
        if let userAgent { extra.append((ReservedField.userAgent, String(userAgent.prefix(256)))) }
        let newID = try regenerate(current.id, extra: extra)
        guard let record = try resolve(newID, touch: false) else { throw .notFound }
        return record
    }

    /// The live sessions of `user`, newest first.
    public func sessions(of user: String) throws(SessionError) -> [SessionRecord] {
        let indexed = try storeCall { () throws(SessionStoreError) in try store.indexedSessions(of: user) }
        var records: [SessionRecord] = []
        for entry in indexed {
            if let record = try resolve(entry.id, touch: false), record.owner?.userID == user { records.append(record) }
        }
        return records.sorted { $0.createdAt > $1.createdAt }
    }

    /// Ends the session of `user` known by `handle`. Returns whether there was one.
    public func end(handle: String, of user: String) throws(SessionError) -> Bool {
        guard let record = try sessions(of: user).first(where: { $0.handle == handle }) else { return false }
        try destroy(record)
        return true
    }

    /// Ends every session of `user` on every instance, at their next request: O(1).
    @discardableResult
    public func revokeAll(of user: String) throws(SessionError) -> Int64 {
        guard SessionNames.isValidUserID(user) else { throw .invalidUserID }
        return try storeCall { () throws(SessionStoreError) in try store.revokeAllSessions(of: user) }
    }

    // MARK: - Helpers

    /// A rotation writes the alias, then the new session, one round trip apart. A request that
    /// follows the alias in between retries a few times, 1 ms apart, instead of failing.
    static var aliasRetries: Int { 5 }

    private static func pauseForRotation() {
        usleep(1000)
    }

    /// Runs `operation` on `id`, following a rotation alias at most once. When the alias points
    /// at a session not written yet, retries up to `aliasRetries` times. Returns the id that
    /// answered and its value, or nil when the session is missing.
    private func followingRotation<Value>(
        from id: SessionID, _ operation: (SessionID) throws(SessionStoreError) -> StoreLookup<Value>
    ) throws(SessionError) -> (id: SessionID, value: Value)? {
        var current = id
        var followedAlias = false
        for attempt in 0..<(2 + Self.aliasRetries) {
            switch try storeCall({ () throws(SessionStoreError) in try operation(current) }) {
            case .found(let value):
                return (current, value)
            case .missing:
                guard followedAlias, attempt < 1 + Self.aliasRetries else { return nil }
                Self.pauseForRotation()
            case .moved(let next):
                guard !followedAlias else { return nil }
                followedAlias = true
                current = next
            }
        }
        return nil
    }

    private func createSession(fields: [(name: String, value: String)]) throws(SessionError) -> SessionID {
        // 192 random bits make a collision practically impossible; the loop only keeps the
        // contract (never reuse an existing id) without assuming it.
        for _ in 0..<3 {
            let id = SessionID.generate()
            if try storeCall({ () throws(SessionStoreError) in try store.create(id, fields: fields, timeouts: timeouts) }) {
                return id
            }
        }
        throw .store(.failed("could not allocate a unique session id"))
    }

    /// Whether the owner's sessions were revoked after this one was created; if so, ends it.
    private func isRevoked(_ owner: SessionOwner?, id: SessionID, handle: String?) throws(SessionError) -> Bool {
        guard let owner else { return false }
        let current = try storeCall { () throws(SessionStoreError) in try store.userGeneration(owner.userID) }
        guard current != owner.generation else { return false }
        _ = try storeCall { () throws(SessionStoreError) in try store.destroy(id) }
        if let handle, !handle.isEmpty {
            try storeCall { () throws(SessionStoreError) in try store.unindex(handle: handle, user: owner.userID) }
        }
        return true
    }

    private func storeCall<T>(_ body: () throws(SessionStoreError) -> T) throws(SessionError) -> T {
        do { return try body() } catch { throw .store(error) }
    }
}

/// Why a session operation failed.
public enum SessionError: Error, Equatable, Sendable, CustomStringConvertible {
    case store(SessionStoreError)
    /// The session does not exist (any more).
    case notFound
    /// An attribute name outside `SessionNames.isValidAttribute`.
    case invalidAttributeName(String)
    /// A user id outside `SessionNames.isValidUserID`.
    case invalidUserID
    /// The change would exceed the session's `SessionLimits`.
    case tooLarge

    public var description: String {
        switch self {
        case .store(let error): return error.description
        case .notFound: return "no such session"
        case .invalidAttributeName(let name): return "invalid attribute name '\(name.prefix(64))'"
        case .invalidUserID: return "invalid user id"
        case .tooLarge: return "session size limit exceeded"
        }
    }
}
