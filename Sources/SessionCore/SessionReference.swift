/// How a store names a session at rest: in its key, and in the user index. For stores that
/// keep ids it is the id itself; for a store that keeps only digests of ids (the Redis store
/// with `--store-id-hashes`) it is the digest, which finds the session but cannot be presented
/// as a cookie. Made only by `SessionStore.reference(to:)` and by the store reading its index.
///
/// `description` is redacted, as `SessionID`'s is: a reference may be the id.
public struct SessionReference: Hashable, Sendable, CustomStringConvertible {
    /// The name as stored.
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { "SessionReference(redacted)" }
}
