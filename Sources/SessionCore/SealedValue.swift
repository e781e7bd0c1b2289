/// The text form of a session value sealed at rest, version 1:
///
///     enc1:<key id>:<base64url, unpadded, of nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)>
///
/// The ciphertext is AES-256-GCM and exactly as long as the UTF-8 plaintext, so the plaintext's
/// length follows from the stored form's (base64url length × 3 / 4, rounded down, minus
/// `overheadByteCount`): the Redis store's scripts count `SessionLimits` in plaintext bytes
/// that way, without a key. The key id names the key of
/// the ring that sealed it (1–16 characters of `A–Z a–z 0–9 _ -`). Only the layout lives here;
/// the cryptography is `SessionCrypto.AESGCMValueSealer`'s.
public struct SealedValue: Equatable, Sendable {
    /// What every sealed value starts with.
    public static let prefix = "enc1:"
    /// Random nonce bytes per value (96 bits, GCM's native size).
    public static let nonceByteCount = 12
    /// Authentication tag bytes.
    public static let tagByteCount = 16
    /// Bytes a sealed value adds to its plaintext before base64url: nonce and tag.
    public static var overheadByteCount: Int { nonceByteCount + tagByteCount }
    /// Longest key id.
    public static let maxKeyIDLength = 16

    /// The key that sealed the value.
    public let keyID: String
    /// Nonce ‖ ciphertext ‖ tag.
    public let payload: [UInt8]

    public init(keyID: String, payload: [UInt8]) {
        self.keyID = keyID
        self.payload = payload
    }

    /// Parses the text form; `nil` for anything else (a plain value, another version, a key id
    /// outside the rules, base64 that is not canonical, or a payload too short for a nonce and
    /// a tag).
    public init?(parsing text: String) {
        guard text.hasPrefix(Self.prefix) else { return nil }
        let rest = text.utf8.dropFirst(Self.prefix.utf8.count)
        guard let colon = rest.firstIndex(of: UInt8(ascii: ":")),
              let keyID = String(rest[rest.startIndex..<colon]), Self.isValidKeyID(keyID),
              let encoded = String(rest[rest.index(after: colon)...]),
              let payload = Base64.decodeURL(encoded), payload.count >= Self.overheadByteCount else { return nil }
        self.keyID = keyID
        self.payload = payload
    }

    /// The text form.
    public var encoded: String { Self.prefix + keyID + ":" + Base64.encode(payload) }

    /// 1–16 characters of `A–Z a–z 0–9 _ -`.
    public static func isValidKeyID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maxKeyIDLength && id.utf8.allSatisfy { Base64.isURLAlphabet($0) }
    }
}
