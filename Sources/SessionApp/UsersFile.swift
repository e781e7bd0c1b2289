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
