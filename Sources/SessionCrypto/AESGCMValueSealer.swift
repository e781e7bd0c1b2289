import SessionCore

/// Seals session values with AES-256-GCM under a ring of keys: the first key seals, every key
/// opens, so keys rotate without logging anyone out (a value is sealed again under the first
/// key whenever it is written again). Each value gets a random 96-bit nonce; the authenticated
/// data binds the value to its session and field, so it opens nowhere else.
///
/// From each 32-byte key two subkeys are derived (HKDF-Expand, RFC 5869, with the key as PRK):
/// one for AES-GCM, one for HMAC-SHA256 user pseudonyms, so one key is never used by two
/// algorithms. Immutable; safe from every thread.
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
            guard let sealing = Self.expand(key.bytes, info: "session-fcgi value sealing v1"),
                  let pseudonym = Self.expand(key.bytes, info: "session-fcgi user pseudonym v1") else { return nil }
            ring.append(RingKey(id: key.id, sealing: sealing, pseudonym: pseudonym))
        }
        self.ring = ring
    }

    public var keyIDs: [String] { ring.map(\.id) }

    public func seal(_ value: String, field: String, session: SessionReference) -> String? {
        guard let key = ring.first, let nonce = SessionCrypto.randomBytes(SealedValue.nonceByteCount),
              let payload = AESGCM.seal(Array(value.utf8), key: key.sealing, nonce: nonce,
                                        aad: Self.authenticatedData(field: field, session: session)) else { return nil }
        return SealedValue(keyID: key.id, payload: payload).encoded
    }

    public func open(_ sealed: String, field: String, session: SessionReference) -> String? {
        guard let value = SealedValue(parsing: sealed), let key = ring.first(where: { $0.id == value.keyID }),
              let plaintext = AESGCM.open(value.payload, key: key.sealing, aad: Self.authenticatedData(field: field, session: session))
        else { return nil }
        return String(validating: plaintext, as: UTF8.self)
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

    /// HKDF-Expand for one 32-byte block: HMAC-SHA256(key, info ‖ 0x01).
    static func expand(_ key: [UInt8], info: String) -> [UInt8]? {
        SessionCrypto.hmacSHA256(key: key, message: Array(info.utf8) + [1])
    }
}
