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

/// The users file: `user:hash` lines; blank lines and `#` comments ignored.
struct UsersFile: Sendable {
    let hashes: [String: String]

    init(text: String) {
        var hashes: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingPrefix(while: { $0 == " " })
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#"), let colon = trimmed.firstIndex(of: ":") else { continue }
            hashes[String(trimmed[..<colon])] = String(trimmed[trimmed.index(after: colon)...])
        }
        self.hashes = hashes
    }

    /// A hash that never matches, verified for unknown users so that timing does not reveal
    /// which user names exist.
    private static let decoy = "pbkdf2-sha256$100000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

    func check(user: String, password: String) -> Bool {
        guard let hash = hashes[user] else {
            _ = PasswordHash.verify(password, against: Self.decoy)
            return false
        }
        return PasswordHash.verify(password, against: hash)
    }
}

/// Unpadded base64url for salts, hashes and cookie signatures.
enum Base64URLCoding {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << UInt32(16 - 8 * $1.offset) }
            for position in 0..<(chunk.count + 1) { output.append(alphabet[Int((value >> UInt32(18 - 6 * position)) & 0x3F)]) }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt32] = []
        for byte in text.utf8 {
            guard let position = alphabet.firstIndex(of: byte) else { return nil }
            values.append(UInt32(position))
        }
        guard values.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | $1.element << UInt32(18 - 6 * $1.offset) }
            for position in 0..<(chunk.count - 1) { output.append(UInt8((value >> UInt32(16 - 8 * position)) & 0xFF)) }
            index += 4
        }
        return output
    }
}

/// Direct access to the PBKDF2 primitive, for known-answer tests.
enum SessionCryptoShim {
    static func pbkdf2(password: String, salt: String, iterations: Int) -> [UInt8]? {
        SessionCrypto.pbkdf2SHA256(password: Array(password.utf8), salt: Array(salt.utf8), iterations: iterations)
    }
}
