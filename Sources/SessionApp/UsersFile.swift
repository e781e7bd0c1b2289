import SessionCore

/// The users file: one `user:hash` line per user (see `session-fcgi hash-password`); blank lines
/// and `#` comments ignored. Lines that cannot be used are refused, each with a problem (line
/// number and reason, never the line itself); `Application` refuses a file that has any.
struct UsersFile: Sendable {
    let hashes: [String: PasswordHash]
    let problems: [String]
    /// What every check costs (`PasswordHash.cost`, iterations times 32-byte blocks): that of
    /// the costliest hash in the file. An unknown user's password is checked against a decoy of
    /// that cost, and a user whose hash costs less also pays the difference on a decoy, so
    /// neither a user's existence nor the count or length chosen for them shows in the time
    /// of an answer.
    let iterationsPerCheck: Int

    init(text: String) {
        var hashes: [String: PasswordHash] = [:]
        var problems: [String] = []
        // `isNewline` also takes "\r\n" (one Character in Swift) as one line break.
        for (offset, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let number = offset + 1
            var trimmed = line.trimmingPrefix(while: { $0 == " " || $0 == "\t" })
            while let last = trimmed.last, last == " " || last == "\t" { trimmed = trimmed.dropLast() }
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
            guard let colon = trimmed.firstIndex(of: ":") else {
                problems.append("line \(number): not 'user:hash'")
                continue
            }
            let user = String(trimmed[..<colon])
            guard SessionNames.isValidUserID(user) else {
                problems.append("line \(number): invalid user name (1-64 of A-Z a-z 0-9 . _ @ + -, starting with a letter or digit)")
                continue
            }
            guard let hash = PasswordHash(encoded: trimmed[trimmed.index(after: colon)...]) else {
                problems.append("line \(number): user \(user): the hash is not a valid pbkdf2-sha256 hash from `session-fcgi hash-password`")
                continue
            }
            guard hashes[user] == nil else {
                problems.append("line \(number): user \(user) appears again")
                continue
            }
            hashes[user] = hash
        }
        self.hashes = hashes
        self.problems = problems
        iterationsPerCheck = hashes.values.map(\.cost).max() ?? PasswordHash.defaultIterations
    }

    /// Whether `password` is `user`'s, at the cost of `iterationsPerCheck` whoever asks.
    func check(user: String, password: String) -> Bool {
        var matches = false
        for (hash, isUsers) in work(for: user) {
            let verified = hash.verify(password)
            if isUsers { matches = verified }
        }
        return matches
    }

    /// The hashes a check of `user` computes: the user's own (marked), then a decoy for the
    /// iterations left to `iterationsPerCheck`; a decoy of the full count for an unknown user.
    func work(for user: String) -> [(hash: PasswordHash, isUsers: Bool)] {
        guard let hash = hashes[user] else { return [(PasswordHash.decoy(iterations: iterationsPerCheck), false)] }
        let left = iterationsPerCheck - hash.cost
        return left > 0 ? [(hash, true), (PasswordHash.decoy(iterations: left), false)] : [(hash, true)]
    }
}
