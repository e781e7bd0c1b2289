/// Where sessions live: one record per session id, plus a small per-user index and a per-user
/// generation number for "log out everywhere". Implementations are used from one thread each
/// (one per worker), so the protocol does not require `Sendable`.
///
/// Rules every implementation keeps (the contract tests check them):
/// - every write applies only if the session still exists, atomically, so a write that started
///   before `destroy` cannot bring the session back, and an unknown id never becomes a record;
/// - every write sets the expiry to the smaller of the idle timeout and the time left before the
///   absolute lifetime (`_x`); a session past its absolute lifetime is deleted, never served;
/// - a session rotated away answers `.moved(newID)` during its grace period.
public protocol SessionStore {
    /// Adds `amount` to the integer field `field`, refreshes last-seen and expiry.
    func increment(_ field: String, by amount: Int64, in id: SessionID, timeouts: SessionTimeouts) throws(SessionStoreError) -> StoreLookup<Counted>

    /// Creates a session with `fields` (created/last-seen/absolute-expiry are set unless given).
    /// Returns `false`, writing nothing, if the id exists.
    func create(_ id: SessionID, fields: [(name: String, value: String)], timeouts: SessionTimeouts) throws(SessionStoreError) -> Bool

    /// All fields of a live session; with `touch`, also refreshes last-seen and expiry.
    func load(_ id: SessionID, timeouts: SessionTimeouts, touch: Bool) throws(SessionStoreError) -> StoreLookup<SessionRecord>

    /// Sets and removes attributes as one delta (never a whole-record rewrite), within `limits`.
    func update(_ id: SessionID, set: [(name: String, value: String)], remove: [String], timeouts: SessionTimeouts,
                limits: SessionLimits) throws(SessionStoreError) -> StoreLookup<UpdateOutcome>

    /// Deletes the session. Returns whether it existed.
    func destroy(_ id: SessionID) throws(SessionStoreError) -> Bool

    /// Atomically reads the session and turns it into an alias of `newID` that lives
    /// `graceSeconds` (deleted at once for 0). Returns the fields to copy to `newID`.
    func beginRotation(of id: SessionID, to newID: SessionID, graceSeconds: Int) throws(SessionStoreError) -> StoreLookup<[String: String]>

    /// The current revocation generation of `user` (0 if never revoked).
    func userGeneration(_ user: String) throws(SessionStoreError) -> Int64

    /// Ends every session of `user` at once, by moving its generation on. Returns the new one.
    func revokeAllSessions(of user: String) throws(SessionStoreError) -> Int64

    /// Records that `user` has session `id`, known to the user as `handle`.
    func index(_ id: SessionID, handle: String, user: String) throws(SessionStoreError)

    /// The user's indexed sessions (entries whose session is gone are pruned first).
    func indexedSessions(of user: String) throws(SessionStoreError) -> [(handle: String, id: SessionID)]

    /// Forgets `handle` in the user's index.
    func unindex(handle: String, user: String) throws(SessionStoreError)

    /// Throws when the store cannot serve requests.
    func checkHealth() throws(SessionStoreError)
}

/// The answer of a store about one session id.
public enum StoreLookup<Value> {
    case found(Value)
    /// Unknown, expired, destroyed or past its absolute lifetime.
    case missing
    /// Rotated to another id; this one is a grace alias.
    case moved(SessionID)
}

extension StoreLookup: Equatable where Value: Equatable {}
extension StoreLookup: Sendable where Value: Sendable {}

/// The result of `increment`.
public struct Counted: Equatable, Sendable {
    public let value: Int64
    /// Who the session belongs to, when someone is logged in (checked against revocation).
    public let owner: SessionOwner?

    public init(value: Int64, owner: SessionOwner?) {
        self.value = value
        self.owner = owner
    }
}

/// A logged-in session's user and the user generation it was created under.
public struct SessionOwner: Equatable, Sendable {
    public let userID: String
    public let generation: Int64

    public init(userID: String, generation: Int64) {
        self.userID = userID
        self.generation = generation
    }
}

/// The result of `update`.
public enum UpdateOutcome: Equatable, Sendable {
    case applied
    /// The change would exceed `SessionLimits`; nothing was written.
    case tooLarge
}

/// Why a store call failed. Both cases are the store's fault, not the client's.
public enum SessionStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The store could not be reached, or did not answer in time.
    case unavailable(String)
    /// The store answered, but not as expected.
    case failed(String)

    public var description: String {
        switch self {
        case .unavailable(let why): return "session store unavailable: \(why)"
        case .failed(let why): return "session store failed: \(why)"
        }
    }
}
