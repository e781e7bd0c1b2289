import SessionCore

/// One key of the ring that seals session values at rest: an id (stored beside every value it
/// seals) and 32 random bytes. `description` never shows the key.
public struct SealingKey: Equatable, Sendable, CustomStringConvertible {
    /// 1–16 characters of `A–Z a–z 0–9 _ -` (`SealedValue.isValidKeyID`).
    public let id: String
    let bytes: [UInt8]

    /// `nil` unless `id` is a valid key id and `bytes` are exactly 32 bytes.
    public init?(id: String, bytes: [UInt8]) {
        guard SealedValue.isValidKeyID(id), bytes.count == AESGCM.keyByteCount else { return nil }
        self.id = id
        self.bytes = bytes
    }

    public var description: String { "SealingKey(\(id), redacted)" }
}
