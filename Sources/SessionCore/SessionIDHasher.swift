/// Keeps session ids out of the store: the store names a session by a digest of its id, and a
/// rotation alias holds the new id sealed under a key derived from the old id, which only the
/// holder of the old cookie knows. `SessionCrypto.SHA256SessionIDHasher` is the production
/// implementation; the core only knows this protocol. Immutable, used from every thread.
public protocol SessionIDHasher: Sendable {
    /// The digest the store names the session `id` by (in keys and in user indexes). Not
    /// keyed: 192 random bits cannot be found from their digest.
    func digest(of id: SessionID) -> String

    /// Whether `text` has the form of a digest (to validate index entries read back).
    func isDigest(_ text: some StringProtocol) -> Bool

    /// `target` sealed so that only a holder of `origin` can read it: what a rotated-away id
    /// points to during its grace period. `nil` when the cryptographic library fails.
    func sealPointer(to target: SessionID, from origin: SessionID) -> String?

    /// The id `sealPointer(to:from:)` sealed for `origin`; `nil` for anything else.
    func openPointer(_ sealed: String, from origin: SessionID) -> SessionID?
}
