import SessionCrypto

/// Salted password hashes in the users file: `pbkdf2-sha256$<iterations>$<salt>$<hash>`
/// (salt and hash in unpadded base64url), one `user:hash` line per user.
enum PasswordHash {
    static let defaultIterations = 100_000

    /// A new hash line for `password` with a random 16-byte salt.
    static func make(_ password: String, iterations: Int = defaultIterations) -> String? {
        guard let salt = SessionCrypto.randomBytes(16),
              let hash = SessionCrypto.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations) else { return nil }
        return "pbkdf2-sha256$\(iterations)$\(Base64URLCoding.encode(salt))$\(Base64URLCoding.encode(hash))"
    }

    /// Whether `password` matches `encoded` (constant-time comparison of the derived keys).
    static func verify(_ password: String, against encoded: String) -> Bool {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let iterations = Int(parts[1]), (1_000...10_000_000).contains(iterations),
              let salt = Base64URLCoding.decode(String(parts[2])), let expected = Base64URLCoding.decode(String(parts[3])),
              !expected.isEmpty,
              let derived = SessionCrypto.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations, length: expected.count)
        else { return false }
        return SessionCrypto.constantTimeEqual(derived, expected)
    }
}

/// Direct access to the PBKDF2 primitive, for known-answer tests.
enum SessionCryptoShim {
    static func pbkdf2(password: String, salt: String, iterations: Int) -> [UInt8]? {
        SessionCrypto.pbkdf2SHA256(password: Array(password.utf8), salt: Array(salt.utf8), iterations: iterations)
    }
}
