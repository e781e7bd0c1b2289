import SessionCore
import SessionCrypto

/// Turns session ids into cookie values and back. Unsigned (the default) the value is the id;
/// with signing keys it is `<id>.<HMAC-SHA256(key, id) in base64url>`: the first key signs,
/// every key verifies (so keys can rotate), and a forged or unsigned value is rejected before
/// any store is asked.
struct CookieCodec: Sendable {
    let signingKeys: [[UInt8]]

    var isSigning: Bool { !signingKeys.isEmpty }

    func encode(_ id: SessionID) -> String {
        guard let key = signingKeys.first else { return id.rawValue }
        return id.rawValue + "." + Base64URLCoding.encode(SessionCrypto.hmacSHA256(key: key, message: Array(id.rawValue.utf8)))
    }

    /// The id carried by a cookie value, or nil if malformed, unsigned or forged.
    func decode(_ value: UnsafeBufferPointer<UInt8>) -> SessionID? {
        guard isSigning else { return SessionID(validatingUTF8: value) }
        guard value.count == SessionID.length + 1 + 43, value[SessionID.length] == UInt8(ascii: ".") else { return nil }
        guard let id = SessionID(validatingUTF8: UnsafeBufferPointer(rebasing: value[0..<SessionID.length])),
              let signature = Base64URLCoding.decode(String(decoding: UnsafeBufferPointer(rebasing: value[(SessionID.length + 1)...]), as: UTF8.self))
        else { return nil }
        let message = Array(id.rawValue.utf8)
        var valid = false
        for key in signingKeys where SessionCrypto.constantTimeEqual(SessionCrypto.hmacSHA256(key: key, message: message), signature) {
            valid = true
        }
        return valid ? id : nil
    }

    /// The first cookie named `name` in the header whose value decodes.
    func presentedID(cookieName: String, header: UnsafeBufferPointer<UInt8>) -> SessionID? {
        var found: SessionID?
        CookieHeader.forEachValue(named: cookieName, inUTF8: header) { value in
            found = decode(value)
            return found == nil
        }
        return found
    }
}
