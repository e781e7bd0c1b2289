/// A session as stored: its id and every hash field. Field names starting with `_` are the
/// store's own (`ReservedField`); the rest are application attributes.
public struct SessionRecord: Equatable, Sendable {
    public let id: SessionID
    public let fields: [String: String]
    /// The store's clock when the record was read (seconds since 1970).
    public let now: Int64

    public init(id: SessionID, fields: [String: String], now: Int64) {
        self.id = id
        self.fields = fields
        self.now = now
    }

    public var createdAt: Int64 { Int64(fields[ReservedField.created] ?? "") ?? 0 }
    public var lastSeenAt: Int64 { Int64(fields[ReservedField.lastSeen] ?? "") ?? 0 }
    public var absoluteExpiresAt: Int64 { Int64(fields[ReservedField.absoluteExpiry] ?? "") ?? 0 }
    public var handle: String { fields[ReservedField.handle] ?? "" }
    public var userAgent: String? { fields[ReservedField.userAgent] }
    public var csrfToken: String? { fields[ReservedField.csrfToken] }

    /// The logged-in user, if any.
    public var owner: SessionOwner? {
        guard let user = fields[ReservedField.user], !user.isEmpty else { return nil }
        return SessionOwner(userID: user, generation: Int64(fields[ReservedField.userGeneration] ?? "") ?? 0)
    }

    /// Application attributes (every field not reserved by the store).
    public var attributes: [String: String] {
        fields.filter { !$0.key.hasPrefix("_") }
    }
}

/// Field names the store keeps for itself in every session hash.
public enum ReservedField {
    public static let created = "_c"
    public static let lastSeen = "_s"
    public static let absoluteExpiry = "_x"
    public static let user = "_u"
    public static let userGeneration = "_g"
    public static let handle = "_h"
    public static let userAgent = "_ua"
    public static let csrfToken = "_t"
    public static let alias = "_alias"
    public static let attributeCount = "_n"
    public static let attributeBytes = "_z"
}

/// Validation of application attribute names and of user ids.
public enum SessionNames {
    /// 1–64 characters of `A–Z a–z 0–9 . _ : -`, not starting with `_` (reserved).
    public static func isValidAttribute(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: "_"), name.utf8.count <= 64 else { return false }
        return name.utf8.allSatisfy { isNameByte($0) || $0 == UInt8(ascii: ":") }
    }

    /// 1–64 characters of `A–Z a–z 0–9 . _ @ -`.
    public static func isValidUserID(_ user: String) -> Bool {
        guard !user.isEmpty, user.utf8.count <= 64 else { return false }
        return user.utf8.allSatisfy { isNameByte($0) || $0 == UInt8(ascii: "@") }
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
