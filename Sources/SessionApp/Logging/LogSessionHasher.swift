import SessionCore
import SessionCrypto

/// What the logs say instead of a session id: the first 16 characters of
/// base64url(HMAC-SHA256(key, id)). Events of one session can be followed across lines (and
/// across instances that share the key, `--log-key-file`), but nobody can turn the hash back
/// into a cookie: without the key it cannot even be checked against a guessed id.
struct LogSessionHasher: Sendable {
    private let key: [UInt8]

    /// A hasher with `key`, or a random key of this process when none is configured.
    init(key: [UInt8]?) {
        self.key = key ?? SessionCrypto.randomBytes(32) ?? Array(SessionID.generate().rawValue.utf8)
    }

    func hash(_ id: SessionID) -> String {
        guard let mac = SessionCrypto.hmacSHA256(key: key, message: Array(id.rawValue.utf8)) else { return "unavailable" }
        return String(Base64.encode(Array(mac.prefix(12))))
    }
}
