/// Where sessions live. Implementations are used from one thread each (one per worker), so the
/// protocol does not require `Sendable`; every write carries the idle timeout as its expiry.
public protocol SessionStore {
    /// Atomically adds `amount` to the integer field `field` of an existing session and refreshes
    /// its expiry. Returns the new value, or `nil` when the session does not exist (unknown,
    /// expired, or destroyed): then nothing is written, so an unknown id never becomes a key.
    func increment(_ field: String, by amount: Int64, in id: SessionID, idleTimeoutSeconds: Int) throws(SessionStoreError) -> Int64?

    /// Atomically creates a session with `fields` and its expiry. Returns `false` (and writes
    /// nothing) if a session with this id already exists.
    func create(_ id: SessionID, fields: [(name: String, value: String)], idleTimeoutSeconds: Int) throws(SessionStoreError) -> Bool

    /// Throws when the store cannot serve requests.
    func checkHealth() throws(SessionStoreError)
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
