import SessionCore

/// Names sessions at rest by SHA-256 of their id (43 characters of base64url) and seals
/// rotation pointers so that only the holder of the old id can follow them:
///
///     p1:<base64url of nonce (12) ‖ AES-256-GCM(new id) ‖ tag (16)>
///
/// under the key HKDF-Expand(old id, "session-fcgi alias pointer v1"), with the old id's
/// digest as authenticated data. The store holds the old id's digest, never the old id, so a
/// copy of it cannot derive the key. No configured key: 192 random bits need none. Immutable.
public struct SHA256SessionIDHasher: SessionIDHasher {
    /// Characters of a digest.
    public static let digestLength = 43
    static let pointerPrefix = "p1:"

    public init() {}

    public func digest(of id: SessionID) -> String {
        Base64.encode(SessionCrypto.sha256(Array(id.rawValue.utf8)))
    }

    public func isDigest(_ text: some StringProtocol) -> Bool {
        text.utf8.count == Self.digestLength && Base64.decodeURL(text) != nil
    }

    public func sealPointer(to target: SessionID, from origin: SessionID) -> String? {
        guard let key = pointerKey(origin), let nonce = SessionCrypto.randomBytes(SealedValue.nonceByteCount),
              let payload = AESGCM.seal(Array(target.rawValue.utf8), key: key, nonce: nonce, aad: pointerData(origin)) else { return nil }
        return Self.pointerPrefix + Base64.encode(payload)
    }

    public func openPointer(_ sealed: String, from origin: SessionID) -> SessionID? {
        guard sealed.hasPrefix(Self.pointerPrefix), let payload = Base64.decodeURL(sealed.dropFirst(Self.pointerPrefix.count)),
              let key = pointerKey(origin), let plaintext = AESGCM.open(payload, key: key, aad: pointerData(origin)) else { return nil }
        return SessionID(validating: String(decoding: plaintext, as: UTF8.self))
    }

    private func pointerKey(_ origin: SessionID) -> [UInt8]? {
        AESGCMValueSealer.expand(Array(origin.rawValue.utf8), info: Array("session-fcgi alias pointer v1".utf8))
    }

    private func pointerData(_ origin: SessionID) -> [UInt8] {
        Array("p1".utf8) + [0] + Array(digest(of: origin).utf8)
    }
}
