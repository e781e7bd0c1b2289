/// Where sessions live: one record per session id, plus per user a small index (handle →
/// session) and a revocation generation. Implementations are used from one thread each (one per
/// worker), so the protocol does not require `Sendable`.
///
/// Sessions are found by their id where a request presents one, and by their
/// `SessionReference` where the store itself named them (the user index, revoke-all): a store
/// may keep only a digest of each id, so that nothing it holds can be presented as a cookie.
///
/// Rules every implementation keeps (the contract suite checks them):
/// - every write to a session applies only if the session still exists, atomically, so a write
///   that started before a destroy cannot bring the session back, and an unknown id never
///   becomes a record;
/// - every write sets the expiry to the smaller of the idle timeout and the time left before
///   the absolute lifetime (`_x`); a session past its absolute lifetime is deleted, never served;
///   every key written has an expiry;
/// - attribute writes keep `SessionLimits.admits` (counted from what is stored, on every path,
///   in plaintext bytes: a store that seals values at rest counts what the value seals, never
///   its sealed form);
/// - a rotated-away id answers `.moved(newID)` (alias) or `.superseded` (privilege change)
///   during its grace period, and holds no session data;
/// - every operation is one round trip (`loadMany` and `destroy` are one pipelined round trip,
///   and so is `answer` for any number of calls).
public protocol SessionStore {
    // MARK: Sessions

    /// Adds `amount` to the integer field `field` and refreshes last-seen and expiry. The hot
    /// path of `GET /count`: returns only the new value.
    func increment(_ field: String, by amount: Int64, in id: SessionID, timeouts: SessionTimeouts) throws(SessionStoreError) -> StoreLookup<Int64>

    /// All fields of a live session. With `touch`, also refreshes last-seen and expiry; with
    /// `incrementing`, also adds 1 to that integer field (and touches), in the same step.
    func load(_ id: SessionID, timeouts: SessionTimeouts, touch: Bool, incrementing field: String?) throws(SessionStoreError) -> StoreLookup<SessionRecord>

    /// Answers several calls (of different requests) at once, in order, each exactly as its own
    /// method would: a network store sends them in one pipelined round trip. When the store
    /// cannot be reached every call gets the error (a call whose reply was lost may or may not
    /// have run, as for a single call). Stores without a cheaper way answer each in turn
    /// (`answerEach`).
    func answer(_ calls: [SessionStoreCall], timeouts: SessionTimeouts) -> [Result<SessionStoreAnswer, SessionStoreError>]

    /// How this store names the session `id` at rest and in user indexes. Pure: no I/O.
    func reference(to id: SessionID) -> SessionReference

    /// Several live sessions at once, without touching them: `nil` for a missing, expired,
    /// rotated-away or superseded one.
    func loadMany(referenced sessions: [SessionReference], timeouts: SessionTimeouts) throws(SessionStoreError) -> [StoredSession?]

    /// Creates a session with `fields` (created, last-seen and absolute expiry are set unless
    /// given). Writes nothing if the id exists or the fields break `limits`.
    func create(_ id: SessionID, fields: [(name: String, value: String)], timeouts: SessionTimeouts,
                limits: SessionLimits) throws(SessionStoreError) -> CreateOutcome

    /// Sets and removes attributes as one delta (never a whole-record rewrite), within `limits`.
    func update(_ id: SessionID, set: [(name: String, value: String)], remove: [String], timeouts: SessionTimeouts,
                limits: SessionLimits) throws(SessionStoreError) -> StoreLookup<UpdateOutcome>

    /// Deletes the sessions. Returns how many existed.
    @discardableResult
    func destroy(referenced sessions: [SessionReference]) throws(SessionStoreError) -> Int

    /// Atomically reads a live session and replaces it by `mark` for `graceSeconds` (deleted at
    /// once for 0): the record's data is removed from the old id either way. Returns the fields
    /// to copy to `newID`.
    func rotate(_ id: SessionID, to newID: SessionID, leaving mark: RotationMark, graceSeconds: Int) throws(SessionStoreError) -> StoreLookup<[String: String]>

    // MARK: Users

    /// The user's current revocation generation (0 if never revoked).
    func userGeneration(_ user: String) throws(SessionStoreError) -> Int64

    /// Records that `user` has session `id` (by its reference), known as `handle` (replacing the handle's previous
    /// entry), stamped with the store's clock in microseconds — only if the user's generation is
    /// still `generation` (no revoke-all happened since the caller read it). Returns how many
    /// entries the index holds afterwards, or `nil` when a revocation intervened (nothing
    /// written).
    func index(handle: String, id: SessionID, of user: String, generation: Int64) throws(SessionStoreError) -> Int?

    /// The user's index entries, as recorded (some may name sessions that ended since).
    func indexedSessions(of user: String) throws(SessionStoreError) -> [UserIndexEntry]

    /// Forgets entries of the user's index, each only if its handle still names the same
    /// session (a rotation may have re-pointed it meanwhile) and, when `minimumAgeSeconds` is
    /// above 0, only if it was written at least that long ago on the store's clock (a login
    /// indexes its session before creating it, so a young entry without a session may be one
    /// whose session is on its way).
    func unindex(_ entries: [(handle: String, session: SessionReference)], of user: String,
                 olderThan minimumAgeSeconds: Int) throws(SessionStoreError)

    /// Moves the user's generation on, so that a login that read the old one can no longer
    /// index its session, and returns the whole index, atomically. The entries stay in the index
    /// until the caller has destroyed their sessions and then unindexed them: should either step
    /// fail, a retry finds them again (taking the index away here left a failed revoke-all
    /// unrepeatable, with every session alive).
    func revokeAll(of user: String) throws(SessionStoreError) -> [UserIndexEntry]

    /// Claims a one-time `nonce` valid until `expires` (Unix seconds), on the store's clock:
    /// `.claimed` the first time while `expires` is neither past nor more than
    /// `maximumLifetimeSeconds` ahead; the record of its use lives until `expires`, so one
    /// clock decides both and no replay window opens between them (a trusted-login assertion).
    func claimNonce(_ nonce: String, expires: Int64, maximumLifetimeSeconds: Int64) throws(SessionStoreError) -> NonceClaim

    /// Counts a login attempt of `account` (an opaque name the caller derives from the user
    /// name) before its password is checked, atomically with the limit: `.counted` while fewer
    /// than `limit` attempts were counted in the current window (opened by the first, for
    /// `windowSeconds` on the store's clock), `.refused` with the seconds the window has left
    /// otherwise (nothing counted). Counting first, in one step, holds the limit however many
    /// attempts run at once.
    func countLoginAttempt(_ account: String, limit: Int, windowSeconds: Int) throws(SessionStoreError) -> LoginAttempt

    /// Takes back one counted attempt of `account` (a login that succeeded), so that only
    /// failed ones count; never below zero.
    func uncountLoginAttempt(_ account: String) throws(SessionStoreError)

    /// Throws when the store cannot serve requests.
    func checkHealth() throws(SessionStoreError)

    /// Waits until the writes made since the last call are held by replicas, where the store
    /// has replicas, for the writes security depends on (logout, revoke-all, ending a session,
    /// the rotation of a login): an acknowledged write can otherwise vanish in a failover.
    /// Bounded in time; the writes are never undone.
    func confirmWrites() throws(SessionStoreError) -> WriteConfirmation
}

/// What `countLoginAttempt` decided.
public enum LoginAttempt: Equatable, Sendable {
    /// Counted: the password may be checked.
    case counted
    /// Over the limit: refused without a check until the window ends.
    case refused(secondsLeft: Int)
}

/// What `claimNonce` found.
public enum NonceClaim: Equatable, Sendable {
    /// First use, in time: the caller may act on it.
    case claimed
    /// Used before.
    case used
    /// Past its expiry on the store's clock.
    case expired
    /// Expiring further ahead than allowed.
    case tooFarAhead
}

/// Whether writes are held by replicas.
public enum WriteConfirmation: Equatable, Sendable {
    /// Every write is on the replicas asked for.
    case confirmed
    /// The store has no replicas to wait for (or waiting is turned off).
    case notReplicated
    /// Fewer replicas than asked for confirmed in time; the writes stand on the primary only.
    case unconfirmed(required: Int, acknowledged: Int)
}

/// What a rotated-away id holds for its grace period.
public enum RotationMark: Equatable, Sendable {
    /// A pointer to the new id: requests with the old id reach the new session. Only for
    /// rotations that do not change who the session belongs to.
    case alias
    /// A tombstone: requests with the old id reach nothing, and are told so (no new session is
    /// started for them, no cookie is set), so the browser's own in-flight requests do not
    /// replace the new cookie. For privilege changes (login, switching user).
    case superseded
}

extension SessionStore {
    /// Several live sessions by id (see `loadMany(referenced:timeouts:)`).
    public func loadMany(_ ids: [SessionID], timeouts: SessionTimeouts) throws(SessionStoreError) -> [SessionRecord?] {
        let sessions = try loadMany(referenced: ids.map(reference(to:)), timeouts: timeouts)
        return zip(ids, sessions).map { id, session in session.map { SessionRecord(id: id, fields: $0.fields, now: $0.now) } }
    }

    /// Deletes the sessions with these ids. Returns how many existed.
    @discardableResult
    public func destroy(_ ids: [SessionID]) throws(SessionStoreError) -> Int {
        try destroy(referenced: ids.map(reference(to:)))
    }

    /// Forgets index entries whatever their age (see `unindex(_:of:olderThan:)`).
    public func unindex(_ entries: [(handle: String, session: SessionReference)], of user: String) throws(SessionStoreError) {
        try unindex(entries, of: user, olderThan: 0)
    }

    /// Forgets index entries given by session id, whatever their age.
    public func unindex(_ entries: [(handle: String, id: SessionID)], of user: String) throws(SessionStoreError) {
        try unindex(entries.map { (handle: $0.handle, session: reference(to: $0.id)) }, of: user, olderThan: 0)
    }
}

/// One entry of a user's session index.
public struct UserIndexEntry: Equatable, Sendable {
    /// The session's public name (shown in the user's list, used to end it).
    public let handle: String
    /// The session, as the store names it (never its id when the store keeps only digests).
    public let session: SessionReference
    /// When the entry was written, in microseconds on the store's clock: orders sessions whose
    /// other times tie at a second.
    public let indexedAt: Int64

    public init(handle: String, session: SessionReference, indexedAt: Int64) {
        self.handle = handle
        self.session = session
        self.indexedAt = indexedAt
    }
}

/// The answer of a store about one session id.
public enum StoreLookup<Value> {
    case found(Value)
    /// Unknown, expired, destroyed or past its absolute lifetime.
    case missing
    /// Rotated to another id (same owner); this one is a grace alias.
    case moved(SessionID)
    /// Replaced by a privilege change; this id leads nowhere during its grace period.
    case superseded
}

extension StoreLookup: Equatable where Value: Equatable {}
extension StoreLookup: Sendable where Value: Sendable {}

/// The result of `create`.
public enum CreateOutcome: Equatable, Sendable {
    /// Written; `now` is the store's clock (the session's creation time unless `_c` was given).
    case created(now: Int64)
    /// The id exists; nothing was written.
    case exists
    /// The fields break `SessionLimits`; nothing was written.
    case tooLarge
}

/// The result of `update`.
public enum UpdateOutcome: Equatable, Sendable {
    case applied
    /// The change would break `SessionLimits`; nothing was written.
    case tooLarge
}

/// Why a store call failed.
public enum SessionStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The store could not be reached or did not answer in time: a 503, try again later.
    case unavailable(String)
    /// The store answered, but with an error or an unexpected reply: a bug or a broken store,
    /// a 500, never reported as an outage.
    case failed(String)

    public var description: String {
        switch self {
        case .unavailable(let why): return "session store unavailable: \(why)"
        case .failed(let why): return "session store failed: \(why)"
        }
    }
}
