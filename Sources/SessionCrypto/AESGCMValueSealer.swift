import SessionCore

/// Seals session values with AES-256-GCM under a ring of keys: the first key seals, every key
/// opens, so keys rotate without logging anyone out (a value is sealed again under the first
/// key whenever it is written again). The authenticated data binds each value to its session
/// and field, so it opens nowhere else.
///
/// Keys, from each 32-byte key of the ring by HKDF-Expand (RFC 5869, the key as PRK): a sealing
/// subkey and a pseudonym subkey, so no key serves two algorithms; and from the sealing subkey,
/// per session, the AES-256 key of that session's values (info: the session reference). Each
/// value gets a random 96-bit nonce, and since a session seals few values, random nonces stay
/// far from the 2^32 values per key that NIST SP 800-38D allows, however busy the service.
/// Immutable; safe from every thread.
public struct AESGCMValueSealer: SessionValueSealer {
    private struct RingKey: Sendable {
        let id: String
        let sealing: [UInt8]
        let pseudonym: [UInt8]
    }

    private let ring: [RingKey]

    /// `nil` for an empty ring, a repeated key id, or a libcrypto failure.
    public init?(keys: [SealingKey]) {
        guard !keys.isEmpty, Set(keys.map(\.id)).count == keys.count else { return nil }
        var ring: [RingKey] = []
        for key in keys {
            guard let sealing = Self.expand(key.bytes, info: Array("session-fcgi value sealing v1".utf8)),
                  let pseudonym = Self.expand(key.bytes, info: Array("session-fcgi user pseudonym v1".utf8)) else { return nil }
            ring.append(RingKey(id: key.id, sealing: sealing, pseudonym: pseudonym))
        }
        self.ring = ring
    }

    public var keyIDs: [String] { ring.map(\.id) }

    public func seal(_ values: [(field: String, value: String)], session: SessionReference) -> [String]? {
        guard let key = ring.first else { return nil }
        guard !values.isEmpty else { return [] }
        guard let sessionKey = Self.sessionKey(key.sealing, session) else { return nil }
        var sealed: [String] = []
        sealed.reserveCapacity(values.count)
        for (field, value) in values {
            guard let nonce = SessionCrypto.randomBytes(SealedValue.nonceByteCount),
                  let payload = AESGCM.seal(Array(value.utf8), key: sessionKey, nonce: nonce,
                                            aad: Self.authenticatedData(field: field, session: session)) else { return nil }
            sealed.append(SealedValue(keyID: key.id, payload: payload).encoded)
        }
        return sealed
    }

    public func open(_ values: [(field: String, sealed: String)], session: SessionReference) -> [String?] {
        // Session keys derived once per key id met (usually one).
        var sessionKeys: [String: [UInt8]] = [:]
        return values.map { field, text in
            guard let value = SealedValue(parsing: text), let key = ring.first(where: { $0.id == value.keyID }) else { return nil }
            if sessionKeys[key.id] == nil { sessionKeys[key.id] = Self.sessionKey(key.sealing, session) }
            guard let sessionKey = sessionKeys[key.id],
                  let plaintext = AESGCM.open(value.payload, key: sessionKey, aad: Self.authenticatedData(field: field, session: session))
            else { return nil }
            return String(validating: plaintext, as: UTF8.self)
        }
    }

    public func pseudonyms(ofUser user: String) -> [String]? {
        var names: [String] = []
        for key in ring {
            guard let digest = SessionCrypto.hmacSHA256(key: key.pseudonym, message: Array(user.utf8)) else { return nil }
            names.append(Base64.encode(digest))
        }
        return names
    }

    /// `enc1 NUL <session reference> NUL <field name>`: a reference never holds a NUL, so the
    /// split is unambiguous whatever the field name holds.
    static func authenticatedData(field: String, session: SessionReference) -> [UInt8] {
        Array("enc1".utf8) + [0] + Array(session.rawValue.utf8) + [0] + Array(field.utf8)
    }

    /// The AES key of one session's values: HKDF-Expand(sealing subkey, "session NUL" ‖ reference).
    static func sessionKey(_ sealing: [UInt8], _ session: SessionReference) -> [UInt8]? {
        expand(sealing, info: Array("session".utf8) + [0] + Array(session.rawValue.utf8))
    }

    /// HKDF-Expand for one 32-byte block: HMAC-SHA256(key, info ‖ 0x01).
    static func expand(_ key: [UInt8], info: [UInt8]) -> [UInt8]? {
        SessionCrypto.hmacSHA256(key: key, message: info + [1])
    }
}
