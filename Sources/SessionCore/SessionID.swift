/// A session identifier: 24 bytes (192 bits) from the OS CSPRNG, written as
/// 32 characters of unpadded base64url, so it is safe in cookies, URLs and Redis keys.
///
/// Input from clients is only ever turned into a `SessionID` through `init?(validating:)`,
/// which accepts exactly that length and alphabet. `description` is redacted so an id does not
/// end up in a log by accident; use `rawValue` where the id itself is meant.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    /// Random bytes per id.
    public static let byteCount = 24
    /// Characters per id.
    public static let length = 32

    /// The id as sent in the cookie and used in the Redis key.
    public let rawValue: String

    /// Accepts exactly `length` characters of `A–Z a–z 0–9 - _`; `nil` for anything else.
    public init?(validating text: some StringProtocol) {
        var count = 0
        for byte in text.utf8 {
            guard count < Self.length, Base64.isURLAlphabet(byte) else { return nil }
            count += 1
        }
        guard count == Self.length else { return nil }
        rawValue = String(text)
    }

    /// The same check on raw UTF-8 bytes (a cookie value as received).
    public init?(validatingUTF8 bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count == Self.length, bytes.allSatisfy(Base64.isURLAlphabet) else { return nil }
        rawValue = String(decoding: bytes, as: UTF8.self)
    }

    private init(trusted rawValue: String) {
        self.rawValue = rawValue
    }

    /// A fresh id from the operating system's CSPRNG. On Linux the standard library's
    /// `SystemRandomNumberGenerator` reads `getrandom(2)` (the kernel CSPRNG) and never falls
    /// back to a weaker generator.
    public static func generate() -> SessionID {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(byteCount)
        while bytes.count < byteCount {
            let word = generator.next()
            for shift in stride(from: 0, to: 64, by: 8) where bytes.count < byteCount {
                bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return SessionID(trusted: Base64.encode(bytes))
    }

    public var description: String { "SessionID(redacted)" }
}
