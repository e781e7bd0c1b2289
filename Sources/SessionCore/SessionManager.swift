import Synchronization

/// The session lifecycle over any `SessionStore`: resolve a presented id, count a visit, start,
/// change, rotate and end sessions, log users in and out, list, cap and revoke a user's
/// sessions. Knows neither HTTP nor Redis, and does no I/O of its own: waiting for a rotated
/// copy is the `rotationRetry` policy the caller passes in. One per worker thread (it holds the
/// worker's store).
///
/// ## Rotation and privilege changes
///
/// Rotating an id copies the session to a fresh id and leaves something at the old id for
/// `rotationGraceSeconds`, because the browser may still have requests in flight that carry the
/// old cookie, and answering those with "no session" plus a fresh cookie would replace the new
/// cookie and log the user out. What is left depends on what the rotation changes:
///
/// - **Same owner** (an anonymous session rotated anonymously, or a user's session rotated for
///   the same user): an *alias* that points at the new id. Whoever holds the old id already had
///   exactly this session, with the same data and the same user, so following the alias gives
///   nobody anything they did not have; the answer may carry the new cookie.
/// - **Privilege change** (login from an anonymous session, or logging in as another user):
///   a *tombstone* (`.superseded`). The old id might be known to someone else — an attacker who
///   planted it (session fixation) or read it while it was anonymous — so it must not lead to
///   the logged-in session in any way: not its id (no Set-Cookie with the new id), not its data
///   or user (no record), not a write (every write script refuses it). And the browser's own
///   in-flight requests must not log the user out: a request with a superseded id gets
///   `.superseded`, for which the routes answer without any `Set-Cookie` (no fresh session,
///   no expired cookie), so the cookie the login response set stays in place.
///   After the grace period the tombstone expires and the old id is simply unknown.
///
/// Logout destroys the session (the cookie is expired in the same response); the user's other
/// sessions are untouched. Logging in as another user on the same browser ends the previous
/// user's session first, so the new user never receives the previous user's data.
public struct SessionManager<Store: SessionStore> {
    public let store: Store
    public var timeouts: SessionTimeouts
    public var limits: SessionLimits
    /// How long a rotated-away id keeps its alias or tombstone (10 s; 0 deletes it at once).
    public var rotationGraceSeconds: Int
    /// How to wait when an alias points at a copy not written yet (a rotation writes the alias,
    /// then the copy, one store call apart).
    public var rotationRetry: RotationRetry

    public init(store: Store, timeouts: SessionTimeouts = SessionTimeouts(), limits: SessionLimits = SessionLimits(),
                rotationGraceSeconds: Int = 10, rotationRetry: RotationRetry = .none) {
        self.store = store
        self.timeouts = timeouts
        self.limits = limits
        self.rotationGraceSeconds = rotationGraceSeconds
        self.rotationRetry = rotationRetry
    }

    /// What a presented id leads to.
    public enum Resolution: Equatable, Sendable {
        /// A live session (after following a same-owner alias, if any).
        case live(SessionRecord)
        /// No session: none presented, or unknown, expired, ended or revoked.
        case none
        /// The id was replaced by a privilege change moments ago: answer without a cookie.
        case superseded

        public var record: SessionRecord? {
            if case .live(let record) = self { return record }
            return nil
        }
    }

    /// The outcome of one `/count` visit.
    public enum Visit: Equatable, Sendable {
        /// Counted in the session `sessionID` (a new one with count 1 when `isNewSession`).
        case counted(sessionID: SessionID, count: Int64, isNewSession: Bool)
        /// The presented id was superseded: nothing counted, no session started.
        case superseded
    }

    /// The outcome of a page visit: the visit counted, and the whole session read, in one step.
    public enum PageVisit: Equatable, Sendable {
        case existing(SessionRecord)
        /// A new session was started with count 1.
        case started(SessionID)
        case superseded
    }

    // MARK: - Reading

    /// The live session for a presented id. One store call (two when following an alias).
    public func resolve(_ presented: SessionID?, touch: Bool = true) throws(SessionError) -> Resolution {
        try resolve(presented, touch: touch, answered: nil)
    }

    /// The store call `resolve(presented, touch:)` starts with (nil: none, no id presented), for
    /// a caller that asks it together with other requests' calls.
    public func resolveCall(_ presented: SessionID?, touch: Bool = true) -> SessionStoreCall? {
        presented.map { .load(id: $0, touch: touch, incrementing: nil) }
    }

    /// `resolve(presented, touch:)`, given `first`: the answer to `resolveCall(presented,
    /// touch:)` when the caller already asked it (nil: asked here).
    public func resolve(_ presented: SessionID?, touch: Bool, answered first: Result<SessionStoreAnswer, SessionStoreError>?)
        throws(SessionError) -> Resolution {
        guard let presented else { return .none }
        let call = { (id: SessionID) in SessionStoreCall.load(id: id, touch: touch, incrementing: nil) }
        switch try followingAlias(from: presented, first: first.map { Self.expect($0, \.loaded) }, { id throws(SessionStoreError) in
            try Self.expect(store.answer(call(id), timeouts: timeouts), \.loaded)
        }) {
        case .found(_, let record): return .live(record)
        case .missing: return .none
        case .superseded: return .superseded
        }
    }

    /// Counts one visit in the presented session, or starts a new one with count 1: one store
    /// call on both paths (two for an id that turns out unknown: look-up, then create).
    public func countVisit(presented: SessionID?) throws(SessionError) -> Visit {
        let call = countVisitCall(presented: presented)
        return try countVisit(presented: presented, asked: call,
                              answered: Result { () throws(SessionStoreError) in try store.answer(call, timeouts: timeouts) })
    }

    /// The store call `countVisit(presented:)` starts with — counting in the presented session,
    /// or creating a new one (with a fresh id) when none is presented — for a caller that asks
    /// it together with other requests' calls.
    public func countVisitCall(presented: SessionID?) -> SessionStoreCall {
        guard let presented else { return newVisitSessionCall() }
        return Self.countCall(presented)
    }

    /// The call that starts a new session, with a fresh id, holding one visit.
    private func newVisitSessionCall() -> SessionStoreCall {
        .create(id: .generate(), fields: [(SessionNames.countField, "1")], limits: limits)
    }

    private static func countCall(_ id: SessionID) -> SessionStoreCall {
        .increment(field: SessionNames.countField, amount: 1, id: id)
    }

    /// What a `/count` visit needs after its first call's answer.
    public enum VisitProgress {
        case done(Visit)
        /// The presented id led to no session: a new one is started by this call (answered to
        /// `countVisitCreated`), which a caller holding several visits asks together.
        case creating(SessionStoreCall)
    }

    /// `countVisit(presented:)`, given the answer to `call`, the `countVisitCall(presented:)`
    /// the caller asked.
    public func countVisit(presented: SessionID?, asked call: SessionStoreCall,
                           answered first: Result<SessionStoreAnswer, SessionStoreError>) throws(SessionError) -> Visit {
        switch try countVisitProgress(presented: presented, asked: call, answered: first) {
        case .done(let visit): return visit
        case .creating(let create):
            return try countVisitCreated(create, answered: Result { () throws(SessionStoreError) in try store.answer(create, timeouts: timeouts) })
        }
    }

    /// The visit, or the call still needed, given the answer to `call` (the
    /// `countVisitCall(presented:)` the caller asked).
    public func countVisitProgress(presented: SessionID?, asked call: SessionStoreCall,
                                   answered first: Result<SessionStoreAnswer, SessionStoreError>) throws(SessionError) -> VisitProgress {
        if case .create = call { return .done(try countVisitCreated(call, answered: first)) }
        guard let presented else { return .creating(newVisitSessionCall()) }
        switch try followingAlias(from: presented, first: Self.expect(first, \.incremented), { id throws(SessionStoreError) in
            try Self.expect(store.answer(Self.countCall(id), timeouts: timeouts), \.incremented)
        }) {
        case .found(let id, let count): return .done(.counted(sessionID: id, count: count, isNewSession: false))
        case .superseded: return .done(.superseded)
        case .missing: return .creating(newVisitSessionCall())
        }
    }

    /// The visit a new session holds, given the answer to `call`, a `.create` that
    /// `countVisitCall` or `countVisitProgress` named.
    public func countVisitCreated(_ call: SessionStoreCall,
                                  answered: Result<SessionStoreAnswer, SessionStoreError>) throws(SessionError) -> Visit {
        guard case .create(let id, _, _) = call else { throw .store(.failed("a visit's new session was asked with another call")) }
        switch try storeCall({ () throws(SessionStoreError) in try Self.expect(answered, \.created).get() }) {
        case .created: return .counted(sessionID: id, count: 1, isNewSession: true)
        case .tooLarge: throw .tooLarge
        case .exists:
            // A fresh id that exists: practically never; another one, asked here.
            return .counted(sessionID: try createSession(fields: [(SessionNames.countField, "1")]), count: 1, isNewSession: true)
        }
    }

    /// Counts a visit and reads the whole session in the same store call (the page).
    public func visitPage(presented: SessionID?) throws(SessionError) -> PageVisit {
        if let presented {
            switch try followingAlias(from: presented, { id throws(SessionStoreError) in
                try store.load(id, timeouts: timeouts, touch: true, incrementing: SessionNames.countField)
            }) {
            case .found(_, let record): return .existing(record)
            case .superseded: return .superseded
            case .missing: break
            }
        }
        return .started(try createSession(fields: [(SessionNames.countField, "1")]))
    }

    // MARK: - Writing

    /// Sets and removes application attributes of the session as one atomic delta.
    /// Fails with `.notFound` (and writes nothing) if the session ended meanwhile.
    public func change(_ id: SessionID, set: [(name: String, value: String)] = [], remove: [String] = []) throws(SessionError) {
        for name in set.map(\.name) + remove where !SessionNames.isValidAttribute(name) {
            throw .invalidAttributeName(name)
        }
        switch try followingAlias(from: id, { id throws(SessionStoreError) in
            try store.update(id, set: set, remove: remove, timeouts: timeouts, limits: limits)
        }) {
        case .found(_, .applied): return
        case .found(_, .tooLarge): throw .tooLarge
        case .missing, .superseded: throw .notFound
        }
    }

    /// Gives the session a new id with the same data and the same owner (no RENAME: a copy, so
    /// both keys may live on different cluster nodes). The old id stays an alias for the grace
    /// period. Returns the new record.
    public func regenerate(_ record: SessionRecord) throws(SessionError) -> SessionRecord {
        let generation = try record.user.map { user throws(SessionError) in try storeCall { () throws(SessionStoreError) in try store.userGeneration(user) } }
        return try rotate(record, extra: [:], mark: .alias, user: record.user, generation: generation, startAfreshIfGone: false)
    }

    /// Ends the session (and removes it from its user's list).
    public func end(_ record: SessionRecord) throws(SessionError) {
        try storeCall { () throws(SessionStoreError) in try store.destroy([record.id]) }
        if let user = record.user {
            try storeCall { () throws(SessionStoreError) in try store.unindex([(record.handle, record.id)], of: user) }
        }
    }

    // MARK: - Users

    /// Logs `user` in on the browser whose current session is `current`: rotates it (or starts
    /// one), marks it with the user, issues a fresh CSRF token, indexes it in the user's list
    /// and ends the user's oldest sessions past `limits.maxSessionsPerUser`. See the type's
    /// documentation for why an anonymous id is left as a tombstone, not an alias.
    public func login(user: String, current: Resolution, userAgent: String?) throws(SessionError) -> SessionRecord {
        guard SessionNames.isValidUserID(user) else { throw .invalidUserID }
        let generation = try storeCall { () throws(SessionStoreError) in try store.userGeneration(user) }
        var extra: [String: String] = [
            ReservedField.user: user,
            ReservedField.csrfToken: SessionID.generate().rawValue,
        ]
        if let userAgent { extra[ReservedField.userAgent] = userAgent.prefix(utf8Bytes: 256) }
        guard let base = current.record else {
            extra[ReservedField.handle] = SessionID.generate().rawValue
            return try create(fields: extra, user: user, generation: generation)
        }
        if let previous = base.user, previous != user {
            // Another user's session on this browser: end it, never hand its data to this user.
            try end(base)
            extra[ReservedField.handle] = SessionID.generate().rawValue
            return try create(fields: extra, user: user, generation: generation)
        }
        let sameUser = base.user == user
        if !sameUser { extra[ReservedField.handle] = SessionID.generate().rawValue }
        return try rotate(base, extra: extra, mark: sameUser ? .alias : .superseded, user: user, generation: generation,
                          startAfreshIfGone: true)
    }

    /// The live sessions of `user`, newest first: two store calls whatever their number, plus
    /// one to forget index entries of sessions that ended.
    public func sessions(of user: String) throws(SessionError) -> [StoredSession] {
        try liveEntries(of: user).map(\.session).sorted { $0.createdAt > $1.createdAt }
    }

    /// Ends the session of `user` known by `handle`. Returns whether there was one. (A store
    /// may list a handle more than once while its index is spread over several names — keys
    /// being rotated — so every entry with the handle is looked at.)
    public func end(handle: String, of user: String) throws(SessionError) -> Bool {
        let entries = try storeCall { () throws(SessionStoreError) in try store.indexedSessions(of: user) }.filter { $0.handle == handle }
        guard !entries.isEmpty else { return false }
        let sessions = try storeCall { () throws(SessionStoreError) in try store.loadMany(referenced: entries.map(\.session), timeouts: timeouts) }
        let owned = zip(entries, sessions).filter { $0.1?.user == user }.map(\.0.session)
        if !owned.isEmpty { try storeCall { () throws(SessionStoreError) in try store.destroy(referenced: owned) } }
        try storeCall { () throws(SessionStoreError) in try store.unindex(entries.map { ($0.handle, $0.session) }, of: user) }
        return !owned.isEmpty
    }

    /// Ends every session of `user` on every instance at once: the generation moves on (a login
    /// racing this cannot index a session made under the old one), every session the index names
    /// is deleted, and only then are their entries removed (three store calls). A failure at any
    /// step leaves the entries in place, so the caller's retry ends what is left. Returns how many
    /// sessions were ended.
    @discardableResult
    public func revokeAll(of user: String) throws(SessionError) -> Int {
        guard SessionNames.isValidUserID(user) else { throw .invalidUserID }
        let entries = try storeCall { () throws(SessionStoreError) in try store.revokeAll(of: user) }
        guard !entries.isEmpty else { return 0 }
        let ended = try storeCall { () throws(SessionStoreError) in try store.destroy(referenced: entries.map(\.session)) }
        try storeCall { () throws(SessionStoreError) in try store.unindex(entries.map { ($0.handle, $0.session) }, of: user) }
        return ended
    }

    // MARK: - Helpers

    private enum Followed<Value> {
        case found(SessionID, Value)
        case missing
        case superseded
    }

    /// Runs `operation` on `id`, following same-owner aliases (at most `maxAliasHops`). When an
    /// alias points at a copy not written yet, waits by `rotationRetry`. `first`, when given, is
    /// what `operation(id)` answered already (asked by the caller together with other calls).
    private func followingAlias<Value>(
        from id: SessionID, first: Result<StoreLookup<Value>, SessionStoreError>? = nil,
        _ operation: (SessionID) throws(SessionStoreError) -> StoreLookup<Value>
    ) throws(SessionError) -> Followed<Value> {
        var current = id
        var hops = 0
        var retries = 0
        var answered = first
        while true {
            let lookup: StoreLookup<Value>
            if let given = answered {
                answered = nil
                lookup = try storeCall { () throws(SessionStoreError) in try given.get() }
            } else {
                lookup = try storeCall { () throws(SessionStoreError) in try operation(current) }
            }
            switch lookup {
            case .found(let value):
                return .found(current, value)
            case .superseded:
                return .superseded
            case .moved(let next):
                guard hops < Self.maxAliasHops else { return .missing }
                hops += 1
                current = next
            case .missing:
                guard hops > 0 else { return .missing }
                // A copy already waited for in vain is not waited for again (see `RotationRetry`).
                if retries == 0, rotationRetry.waitedInVain(for: current) { return .missing }
                guard retries < rotationRetry.attempts else {
                    rotationRetry.noteWaitedInVain(for: current)
                    return .missing
                }
                rotationRetry.pause(retries)
                retries += 1
            }
        }
    }

    /// The lookup in `answer`, which must be of the kind `kind` picks (the answer to the call
    /// that was asked); any other kind is a store failure, never taken for a lookup.
    private static func expect<Value>(_ answer: Result<SessionStoreAnswer, SessionStoreError>,
                                      _ kind: KeyPath<SessionStoreAnswer, Value?>) -> Result<Value, SessionStoreError> {
        answer.flatMap { answer in
            guard let lookup = answer[keyPath: kind] else { return .failure(.failed("the store answered another call")) }
            return .success(lookup)
        }
    }

    private static func expect<Value>(_ answer: SessionStoreAnswer, _ kind: KeyPath<SessionStoreAnswer, Value?>)
        throws(SessionStoreError) -> Value {
        try expect(.success(answer), kind).get()
    }

    /// Two rotations within one grace period (say, two quick re-logins) make a chain of two.
    static var maxAliasHops: Int { 2 }

    private func createSession(fields: [(name: String, value: String)]) throws(SessionError) -> SessionID {
        // 192 random bits make a collision practically impossible; the loop only keeps the
        // contract (never reuse an existing id) without assuming it.
        for _ in 0..<3 {
            let id = SessionID.generate()
            switch try storeCall({ () throws(SessionStoreError) in try store.create(id, fields: fields, timeouts: timeouts, limits: limits) }) {
            case .created: return id
            case .exists: continue
            case .tooLarge: throw .tooLarge
            }
        }
        throw .store(.failed("could not allocate a unique session id"))
    }

    /// Rotates `base` to a new id with `extra` fields, leaving `mark` at the old id.
    private func rotate(_ base: SessionRecord, extra: [String: String], mark: RotationMark, user: String?,
                        generation: Int64?, startAfreshIfGone: Bool) throws(SessionError) -> SessionRecord {
        let newID = SessionID.generate()
        // A login under a new handle (the session changes owner) records its entry before the
        // rotation: should that fail (the index's node refusing writes), the browser keeps its
        // session and data. A same-owner rotation keeps its handle, whose entry still names the
        // old session until the rotation is done, so it is recorded after (in `create`).
        var preIndexed = false
        if let user, let generation, let handle = extra[ReservedField.handle] {
            try preIndex(handle: handle, id: newID, of: user, generation: generation)
            preIndexed = true
        }
        let rotated = try storeCall { () throws(SessionStoreError) in
            try store.rotate(base.id, to: newID, leaving: mark, graceSeconds: rotationGraceSeconds)
        }
        var fields: [String: String]
        switch rotated {
        case .found(let copied): fields = copied
        case .missing, .moved, .superseded:
            // Ended or rotated by a parallel request meanwhile: a login starts afresh (never
            // reusing it); a plain rotation has nothing left to rotate.
            guard startAfreshIfGone else { throw .notFound }
            fields = [:]
        }
        for (name, value) in extra { fields[name] = value }
        if fields[ReservedField.handle] == nil { fields[ReservedField.handle] = SessionID.generate().rawValue }
        return try create(fields: fields, user: user, generation: generation, id: newID, preIndexed: preIndexed)
    }

    /// The first of a login's two index writes (see `create`): `revokedDuringLogin` when a
    /// revoke-all came after the generation was read.
    private func preIndex(handle: String, id: SessionID, of user: String, generation: Int64) throws(SessionError) {
        guard try storeCall({ () throws(SessionStoreError) in
            try store.index(handle: handle, id: id, of: user, generation: generation)
        }) != nil else { throw .revokedDuringLogin }
    }

    /// Writes a new session (dropping application attributes if they no longer fit the limits)
    /// and, for a user, indexes it and enforces the per-user cap.
    ///
    /// A user's session is indexed *before* it is written, and indexed again after: no failure
    /// or crash between the round trips can leave a logged-in session that revoke-all, the
    /// user's list and the cap do not see (an entry whose session never came is harmless, and
    /// forgotten by `liveEntries` once older than `indexGraceSeconds`). The second write checks
    /// the generation again: a revoke-all that read the index before this session existed
    /// cannot have ended it, so the session is ended here.
    private func create(fields: [String: String], user: String?, generation: Int64?, id: SessionID = .generate(),
                        preIndexed: Bool = false) throws(SessionError) -> SessionRecord {
        var fields = fields
        fields[ReservedField.alias] = nil
        fields[ReservedField.superseded] = nil
        let owner: (user: String, generation: Int64, handle: String)?
        if let user, let generation {
            let handle = fields[ReservedField.handle] ?? SessionID.generate().rawValue
            fields[ReservedField.handle] = handle
            owner = (user, generation, handle)
            if !preIndexed { try preIndex(handle: handle, id: id, of: user, generation: generation) }
        } else {
            owner = nil
        }
        var outcome = try storeCall { () throws(SessionStoreError) in
            try store.create(id, fields: fields.map { ($0.key, $0.value) }, timeouts: timeouts, limits: limits)
        }
        if outcome == .tooLarge {
            // Copied attributes that a lowered limit no longer admits: keep the login, drop them.
            fields = fields.filter { !SessionNames.isAttribute($0.key) }
            outcome = try storeCall { () throws(SessionStoreError) in
                try store.create(id, fields: fields.map { ($0.key, $0.value) }, timeouts: timeouts, limits: limits)
            }
        }
        guard case .created(let now) = outcome else { throw .store(.failed("new session id already taken")) }
        if fields[ReservedField.created] == nil { fields[ReservedField.created] = String(now) }
        if fields[ReservedField.absoluteExpiry] == nil { fields[ReservedField.absoluteExpiry] = String(now + Int64(timeouts.absoluteSeconds)) }
        fields[ReservedField.lastSeen] = String(now)
        let record = SessionRecord(id: id, fields: fields, now: now)
        guard let owner else { return record }
        let indexedAgain: Int?
        do {
            indexedAgain = try store.index(handle: owner.handle, id: id, of: owner.user, generation: owner.generation)
        } catch {
            // Whether it was written is unknown, and a revoke-all or an end-by-handle may have
            // removed the first entry meanwhile: the session must not outlive the failed login.
            _ = try? store.destroy([id])
            throw .store(error)
        }
        guard let count = indexedAgain else {
            // Every session of the user was revoked while this one was being made.
            try storeCall { () throws(SessionStoreError) in try store.destroy([id]) }
            throw .revokedDuringLogin
        }
        if count > limits.maxSessionsPerUser { try enforceSessionCap(of: owner.user, keeping: id) }
        return record
    }

    /// How long an index entry without its session is kept: the time a login may take between
    /// indexing its session and writing it (round trips bounded by the store's timeouts).
    static var indexGraceSeconds: Int { 60 }

    /// The user's index entries whose sessions live and belong to the user, with the sessions;
    /// forgets the other entries once older than `indexGraceSeconds` (a younger one may belong
    /// to a login writing its session now).
    private func liveEntries(of user: String) throws(SessionError) -> [(entry: UserIndexEntry, session: StoredSession)] {
        let entries = try storeCall { () throws(SessionStoreError) in try store.indexedSessions(of: user) }
        guard !entries.isEmpty else { return [] }
        let sessions = try storeCall { () throws(SessionStoreError) in try store.loadMany(referenced: entries.map(\.session), timeouts: timeouts) }
        var live: [(entry: UserIndexEntry, session: StoredSession)] = []
        var stale: [UserIndexEntry] = []
        for (entry, session) in zip(entries, sessions) {
            if let session, session.user == user, session.handle == entry.handle { live.append((entry, session)) } else { stale.append(entry) }
        }
        if !stale.isEmpty {
            try storeCall { () throws(SessionStoreError) in
                try store.unindex(stale.map { ($0.handle, $0.session) }, of: user, olderThan: Self.indexGraceSeconds)
            }
        }
        return live
    }

    /// Ends the user's least recently used sessions beyond `limits.maxSessionsPerUser`, never
    /// `keeping` (last seen first, ties broken by when they were indexed).
    private func enforceSessionCap(of user: String, keeping: SessionID) throws(SessionError) {
        let live = try liveEntries(of: user)
        let excess = live.count - limits.maxSessionsPerUser
        guard excess > 0 else { return }
        let kept = store.reference(to: keeping)
        let oldest = live.filter { $0.entry.session != kept }
            .sorted { ($0.session.lastSeenAt, $0.entry.indexedAt) < ($1.session.lastSeenAt, $1.entry.indexedAt) }
            .prefix(excess)
        try storeCall { () throws(SessionStoreError) in try store.destroy(referenced: oldest.map(\.entry.session)) }
        try storeCall { () throws(SessionStoreError) in try store.unindex(oldest.map { ($0.entry.handle, $0.entry.session) }, of: user) }
    }

    @discardableResult
    private func storeCall<T>(_ body: () throws(SessionStoreError) -> T) throws(SessionError) -> T {
        do { return try body() } catch { throw .store(error) }
    }
}

/// How `SessionManager` waits for a rotated copy that an alias already points at. The core
/// does no I/O and never sleeps by itself: stores that need a wait (a network store writes the
/// alias and the copy one round trip apart) come with a policy that pauses.
///
/// The wait is for a copy on its way, and a copy that did not come within it has ended (a
/// logout or a revocation after the rotation) while its alias lives out the grace period.
/// Such targets are remembered (`memory`) so that the wait is not repeated: without that, a
/// user who logs in twice and logs out could make every request presenting the first id cost
/// a worker the whole wait, for as long as the alias lives.
public struct RotationRetry: Sendable {
    /// How many times to look again.
    public var attempts: Int
    /// Called before each new look with the attempt number (0, 1, …).
    public var pause: @Sendable (Int) -> Void
    /// Targets recently waited for in vain (nil: none remembered).
    public var memory: MissingCopies?

    public init(attempts: Int, pause: @escaping @Sendable (Int) -> Void, memory: MissingCopies? = nil) {
        self.attempts = attempts
        self.pause = pause
        self.memory = memory
    }

    /// Never wait: for stores whose writes are visible at once (`InMemorySessionStore`).
    public static let none = RotationRetry(attempts: 0, pause: { _ in })

    func waitedInVain(for target: SessionID) -> Bool { memory?.contains(target) ?? false }

    func noteWaitedInVain(for target: SessionID) {
        guard attempts > 0 else { return }
        memory?.insert(target)
    }
}

/// Alias targets a rotation retry waited for in vain, each for `lifetimeMilliseconds`; at most
/// `capacity` of them (the oldest are forgotten first). Shared by the workers of a process.
public final class MissingCopies: Sendable {
    public let capacity: Int
    public let lifetimeMilliseconds: Int64
    private let now: @Sendable () -> Int64
    private let entries = Mutex<[SessionID: Int64]>([:])

    /// `now`: a monotonic clock in milliseconds.
    public init(capacity: Int = 256, lifetimeMilliseconds: Int64 = 2000, now: @escaping @Sendable () -> Int64) {
        self.capacity = capacity
        self.lifetimeMilliseconds = lifetimeMilliseconds
        self.now = now
    }

    public func contains(_ target: SessionID) -> Bool {
        let now = now()
        return entries.withLock { entries in
            guard let until = entries[target] else { return false }
            if until > now { return true }
            entries[target] = nil
            return false
        }
    }

    public func insert(_ target: SessionID) {
        let now = now()
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { $0.value > now }
                while entries.count >= capacity, let oldest = entries.min(by: { $0.value < $1.value }) {
                    entries[oldest.key] = nil
                }
            }
            entries[target] = now + lifetimeMilliseconds
        }
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
    /// Every session of the user was revoked while this login was in progress.
    case revokedDuringLogin

    public var description: String {
        switch self {
        case .store(let error): return error.description
        case .notFound: return "no such session"
        case .invalidAttributeName(let name): return "invalid attribute name '\(name.prefix(64))'"
        case .invalidUserID: return "invalid user id"
        case .tooLarge: return "session size limit exceeded"
        case .revokedDuringLogin: return "the user's sessions were revoked during the login"
        }
    }
}
