import Synchronization
import SessionCore

/// How `RedisSessionStore` names and writes sessions in Redis, with or without protection at
/// rest. Pure (no I/O) and immutable, so it is shared by every worker's store.
///
/// | | default | `sealer` (encryption at rest) | `idHasher` (hashed ids) |
/// | --- | --- | --- | --- |
/// | session key | `<prefix><id>` | same | `<prefix><SHA-256 of id>` |
/// | attributes, `_u`, `_ua`, `_t` | plain | `SealedValue`, bound to field and session | plain |
/// | `count`, `_c`, `_s`, `_x`, `_h` | plain | plain | plain |
/// | `_alias` (rotation grace) | new id | new id | new id sealed under the old id |
/// | user keys | `<userPrefix>{<user>}:…` | `<userPrefix>{<pseudonym>}:…`, one per key | same as default |
/// | index entry | `<µs>:<id>` | same | `<µs>:<SHA-256 of id>` |
///
/// With both, Redis holds no attribute value, user name, user agent, CSRF token or session id.
public struct RedisSessionLayout: Sendable {
    /// Prepended to a session's reference to form its key (`sid_`).
    public let keyPrefix: String
    /// Prepended to `{user or pseudonym}` for the index and generation keys (`sidu_`).
    public let userKeyPrefix: String
    /// Seals values at rest; `nil` stores them plain.
    public let sealer: (any SessionValueSealer)?
    /// Names sessions by digests of their ids; `nil` names them by their ids.
    public let idHasher: (any SessionIDHasher)?
    /// Sealed values read that did not open, across the process (shared by every copy).
    public let unopenedValues = UnopenedValueCount()

    public init(keyPrefix: String = "sid_", userKeyPrefix: String = "sidu_", sealer: (any SessionValueSealer)? = nil,
                idHasher: (any SessionIDHasher)? = nil) {
        self.keyPrefix = keyPrefix
        self.userKeyPrefix = userKeyPrefix
        self.sealer = sealer
        self.idHasher = idHasher
    }

    // MARK: - Sessions

    /// The session's name at rest: its id, or the digest of its id.
    public func reference(to id: SessionID) -> SessionReference {
        SessionReference(rawValue: idHasher?.digest(of: id) ?? id.rawValue)
    }

    /// The Redis key of a session.
    public func key(for session: SessionReference) -> String { keyPrefix + session.rawValue }

    /// The Redis key of the session `id`.
    public func key(for id: SessionID) -> String { key(for: reference(to: id)) }

    /// A reference read back from an index entry, if it has this layout's form.
    func reference(parsing text: Substring) -> SessionReference? {
        // Either form, whatever this layout writes: an index written with --store-id-hashes
        // read by a process without it (a `revoke-user` given only the keys file), or the
        // other way round, still names its sessions, so revoke-all still ends them.
        if let idHasher, idHasher.isDigest(text) { return SessionReference(rawValue: String(text)) }
        if let id = SessionID(validating: text) { return SessionReference(rawValue: id.rawValue) }
        if idHasher == nil, Self.looksLikeDigest(text) { return SessionReference(rawValue: String(text)) }
        return nil
    }

    /// A SHA-256 digest in base64url without padding (what `--store-id-hashes` names sessions by).
    private static func looksLikeDigest(_ text: Substring) -> Bool {
        text.utf8.count == 43 && text.utf8.allSatisfy { byte in
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
        }
    }

    /// What `_alias` holds while `old` points at `new`.
    func aliasValue(to new: SessionID, from old: SessionID) throws(SessionStoreError) -> String {
        guard let idHasher else { return new.rawValue }
        guard let sealed = idHasher.sealPointer(to: new, from: old) else { throw .failed("cannot seal the rotation pointer") }
        return sealed
    }

    /// The id `_alias` (as read at `old`) points at; `nil` when it does not open or parse.
    func aliasTarget(_ value: String, from old: SessionID) -> SessionID? {
        if let idHasher { return idHasher.openPointer(value, from: old) }
        return SessionID(validating: value)
    }

    // MARK: - Values

    /// Whether values are sealed (the scripts then count limits in plaintext bytes).
    var sealsValues: Bool { sealer != nil }

    /// `fields` as written to the session: sealed where `SessionNames.isSealedAtRest`.
    func storedFields(_ fields: [(name: String, value: String)], in session: SessionReference)
        throws(SessionStoreError) -> [(name: String, value: String)] {
        guard let sealer else { return fields }
        let sealable = fields.indices.filter { SessionNames.isSealedAtRest(fields[$0].name) }
        guard !sealable.isEmpty else { return fields }
        guard let sealed = sealer.seal(sealable.map { (fields[$0].name, fields[$0].value) }, session: session),
              sealed.count == sealable.count else { throw .failed("cannot seal session values") }
        var stored = fields
        for (index, value) in zip(sealable, sealed) { stored[index].value = value }
        return stored
    }

    /// The fields as read from the session, opened: a sealed field that does not open (altered,
    /// moved from another field or session, sealed under a key no longer in the ring, or
    /// written plain behind the store's back) is left out — absent, never another value.
    func openedFields(_ stored: [String: String], in session: SessionReference) -> [String: String] {
        guard let sealer else { return stored }
        var fields = stored.filter { !SessionNames.isSealedAtRest($0.key) }
        let sealed = stored.filter { SessionNames.isSealedAtRest($0.key) }.map { (field: $0.key, sealed: $0.value) }
        guard !sealed.isEmpty else { return fields }
        for (entry, opened) in zip(sealed, sealer.open(sealed, session: session)) {
            if let opened { fields[entry.field] = opened } else { unopenedValues.add() }
        }
        return fields
    }

    // MARK: - Users

    /// The names of the user's keys, the one written first: the user id, or with a sealer its
    /// pseudonym under each key of the ring (so rotating keys loses no index entry).
    func userNames(of user: String) throws(SessionStoreError) -> [String] {
        guard let sealer else { return [user] }
        guard let names = sealer.pseudonyms(ofUser: user), !names.isEmpty else { throw .failed("cannot derive the user's key names") }
        return names
    }

    /// The Redis key of the user index named `name` (handle → `<µs>:<reference>`).
    func indexKey(named name: String) -> String { userKeyPrefix + "{" + name + "}:sessions" }

    /// The Redis key of the revocation generation named `name`.
    func generationKey(named name: String) -> String { userKeyPrefix + "{" + name + "}:gen" }

    /// The login attempts counted for an account (`countLoginAttempt`): the caller's opaque
    /// name for it, never the user name as typed.
    func loginAttemptsKey(_ account: String) -> String { userKeyPrefix + "attempts:" + account }

    /// A claimed trusted-login nonce (`claimNonce`): by the nonce alone, so every instance
    /// finds the same record whatever its encryption keys' order.
    func nonceKey(_ nonce: String) -> String { userKeyPrefix + "nonce:" + nonce }
}

/// How many sealed values did not open: a key missing from one instance's ring (a key step
/// taken by reload, or on one host only), values altered or moved in Redis. Users then look
/// logged out or lose attributes, and this count (`session_sealed_values_unopened_total`) is
/// what says why.
public final class UnopenedValueCount: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    func add() { count.add(1, ordering: .relaxed) }

    public var value: Int { count.load(ordering: .relaxed) }
}
