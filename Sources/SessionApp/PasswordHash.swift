import SessionCore
import SessionCrypto

/// A salted password hash of the users file: `pbkdf2-sha256$<iterations>$<salt>$<hash>` (salt
/// and hash in unpadded base64url), parsed once when the file is loaded.
struct PasswordHash: Equatable, Sendable {
    static let defaultIterations = 100_000
    /// Iteration counts accepted from a users file.
    static let iterationRange = 10_000...10_000_000

    let iterations: Int
    let salt: [UInt8]
    let hash: [UInt8]

    /// Parses an encoded hash; `nil` for anything malformed (unknown scheme, too few
    /// iterations, salt under 8 bytes, hash under 16 bytes, non-canonical base64url).
    init?(encoded: some StringProtocol) {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let iterations = Int(parts[1]), Self.iterationRange.contains(iterations),
              let salt = Base64.decodeURL(parts[2]), salt.count >= 8,
              let hash = Base64.decodeURL(parts[3]), (16...64).contains(hash.count) else { return nil }
        self.iterations = iterations
        self.salt = salt
        self.hash = hash
    }

    private init(iterations: Int, salt: [UInt8], hash: [UInt8]) {
        self.iterations = iterations
        self.salt = salt
        self.hash = hash
    }

    /// A new hash of `password` (its UTF-8 bytes) with a random 16-byte salt.
    static func make(_ password: [UInt8], iterations: Int = defaultIterations) -> PasswordHash? {
        guard let salt = SessionCrypto.randomBytes(16),
              let hash = SessionCrypto.pbkdf2SHA256(password: password, salt: salt, iterations: iterations) else { return nil }
        return PasswordHash(iterations: iterations, salt: salt, hash: hash)
    }

    /// What checking a password against this hash costs, in HMAC-SHA-256 iteration blocks:
    /// PBKDF2 runs its iterations once per 32 bytes of output, so a 64-byte hash costs twice
    /// its iteration count.
    var cost: Int { iterations * ((hash.count + 31) / 32) }

    /// The users-file form.
    var encoded: String {
        "pbkdf2-sha256$\(iterations)$\(Base64.encode(salt))$\(Base64.encode(hash))"
    }

    /// Whether `password` matches (derived keys compared in constant time).
    func verify(_ password: String) -> Bool {
        guard let derived = SessionCrypto.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations, length: hash.count)
        else { return false }
        return SessionCrypto.constantTimeEqual(derived, hash)
    }

    /// Verified for unknown users, so that the answer takes as long as for a real one: as
    /// many iterations as `UsersFile.check` must still spend (`UsersFile.work(for:)`); its
    /// 32-byte hash makes its cost its iteration count.
    static func decoy(iterations: Int) -> PasswordHash {
        PasswordHash(iterations: iterations, salt: [UInt8](repeating: 0, count: 16), hash: [UInt8](repeating: 0, count: 32))
    }
}
