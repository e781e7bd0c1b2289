import SessionCore
import SessionCrypto

/// The `--encryption-keys-file`: one `key-id:base64-of-32-bytes` line per key (the key as
/// `openssl rand -base64 32` prints it), the first line's key sealing, every key opening;
/// blank lines and `#` comments ignored. Any other line stops the start with an error naming
/// the line (its number and what is wrong, never the key).
enum SealingKeyFile {
    static func parse(_ text: String, what: String) throws(ConfigurationError) -> [SealingKey] {
        var keys: [SealingKey] = []
        var lines: [String: Int] = [:]
        var material: [[UInt8]: Int] = [:]
        // `isNewline` also takes "\r\n" (one Character in Swift) as one line break.
        for (offset, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let number = offset + 1
            var trimmed = line.trimmingPrefix(while: { $0 == " " || $0 == "\t" })
            while let last = trimmed.last, last == " " || last == "\t" { trimmed = trimmed.dropLast() }
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
            func refuse(_ why: String) -> ConfigurationError { ConfigurationError("\(what): line \(number): \(why)") }
            guard let colon = trimmed.firstIndex(of: ":") else { throw refuse("expected key-id:base64-of-32-bytes") }
            let id = String(trimmed[..<colon])
            guard SealedValue.isValidKeyID(id) else {
                throw refuse("the key id must be 1 to \(SealedValue.maxKeyIDLength) characters of A-Z a-z 0-9 _ -")
            }
            if let earlier = lines[id] { throw refuse("key id \(id) repeats line \(earlier)") }
            guard let bytes = Base64.decodeStandard(trimmed[trimmed.index(after: colon)...]) else {
                throw refuse("key \(id) is not base64 (make one with `openssl rand -base64 32`)")
            }
            guard let key = SealingKey(id: id, bytes: bytes) else { throw refuse("key \(id) is \(bytes.count) bytes, not 32") }
            guard SecretRules.estimatedBits(bytes) >= 96 else {
                throw refuse("key \(id) is too predictable; use `openssl rand -base64 32`")
            }
            if let earlier = material[bytes] { throw refuse("key \(id) is the same key as line \(earlier)") }
            lines[id] = number
            material[bytes] = number
            keys.append(key)
        }
        guard !keys.isEmpty else { throw ConfigurationError("\(what): no keys (one key-id:base64-of-32-bytes line each)") }
        return keys
    }
}
