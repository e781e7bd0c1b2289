/// Seals session values at rest, so whoever reads the store (a replica, a backup, `MONITOR`)
/// reads no attribute, user name, user agent or CSRF token. `SessionCrypto.AESGCMValueSealer`
/// is the production implementation (AES-256-GCM, a ring of keys); the core only knows this
/// protocol. Implementations are immutable and used from every worker thread.
///
/// A sealed value is bound to its field and its session: it opens only where it was written,
/// so a value copied to another field or session, altered, or sealed under a key the ring no
/// longer holds does not open — it never opens as another value.
public protocol SessionValueSealer: Sendable {
    /// The key ids of the ring, the sealing key first (for logs; never the keys).
    var keyIDs: [String] { get }

    /// `values` of the session stored as `session`, each sealed under the first key with a
    /// fresh random nonce, in `SealedValue` form, in order. All of one session at once, so
    /// per-session work is done once. `nil` when the cryptographic library fails: the caller
    /// must then store nothing.
    func seal(_ values: [(field: String, value: String)], session: SessionReference) -> [String]?

    /// The values `seal` sealed for these fields of this session under any key of the ring, in
    /// order; `nil` for each that is anything else.
    func open(_ values: [(field: String, sealed: String)], session: SessionReference) -> [String?]

    /// Names for `user` in store keys, one per key of the ring, the first key's first: keyed
    /// digests, so a copy of the store names no user and cannot be searched for a guessed one.
    /// Writes use the first; reads and revocations use all, so rotating keys loses no index.
    /// `nil` when the cryptographic library fails (never a shorter list).
    func pseudonyms(ofUser user: String) -> [String]?
}

extension SessionValueSealer {
    /// One value (see `seal(_:session:)`).
    public func seal(_ value: String, field: String, session: SessionReference) -> String? {
        seal([(field: field, value: value)], session: session)?.first
    }

    /// One value (see `open(_:session:)`).
    public func open(_ sealed: String, field: String, session: SessionReference) -> String? {
        open([(field: field, sealed: sealed)], session: session).first ?? nil
    }
}
