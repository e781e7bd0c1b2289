/// A session as stored: its id and every hash field. Field names starting with `_` are the
/// store's own (`ReservedField`), `count` is the visit counter (`SessionNames.countField`), and
/// the rest are application attributes.
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
    /// The public name of the session in its user's list (never the id).
    public var handle: String { fields[ReservedField.handle] ?? "" }
    public var userAgent: String? { fields[ReservedField.userAgent] }
    public var csrfToken: String? { fields[ReservedField.csrfToken] }
    /// The visit counter of `GET /count` and the page.
    public var visitCount: Int64 { Int64(fields[SessionNames.countField] ?? "") ?? 0 }

    /// The logged-in user, if any.
    public var user: String? {
        guard let user = fields[ReservedField.user], !user.isEmpty else { return nil }
        return user
    }

    /// Application attributes: every field that is neither reserved nor the visit counter.
    public var attributes: [String: String] {
        fields.filter { SessionNames.isAttribute($0.key) }
    }

    /// When the session ends if nothing else happens: the sooner of the idle and absolute ends.
    public func expiresAt(idleTimeoutSeconds: Int) -> Int64 {
        min(absoluteExpiresAt, lastSeenAt + Int64(idleTimeoutSeconds))
    }
}

/// Field names the store keeps for itself in session hashes.
public enum ReservedField {
    public static let created = "_c"
    public static let lastSeen = "_s"
    public static let absoluteExpiry = "_x"
    public static let user = "_u"
    public static let handle = "_h"
    public static let userAgent = "_ua"
    public static let csrfToken = "_t"
    /// On a rotated-away id kept for the grace period: the new id (a rotation that did not
    /// change who the session belongs to).
    public static let alias = "_alias"
    /// On a rotated-away id kept for the grace period: the id was replaced by a privilege
    /// change (login); it leads nowhere.
    public static let superseded = "_sup"
}

/// Validation of application attribute names and of user ids.
public enum SessionNames {
    /// The visit counter field: the seed's `sid_<id>` hash field `count`. Only the store's
    /// increment writes it; it is not an application attribute.
    public static let countField = "count"

    /// Whether a stored field is an application attribute (and so counts against
    /// `SessionLimits`): neither `_`-prefixed nor the visit counter.
    public static func isAttribute(_ name: String) -> Bool {
        !name.hasPrefix("_") && name != countField
    }

    /// Names a client may set: 1–64 characters of `A–Z a–z 0–9 . _ : -`, not starting with `_`
    /// and not `count` (both reserved for the store).
    public static func isValidAttribute(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: "_"), name.utf8.count <= 64, name != countField else { return false }
        return name.utf8.allSatisfy { isNameByte($0) || $0 == UInt8(ascii: ":") }
    }

    /// 1–64 characters of `A–Z a–z 0–9 . _ @ -`, starting with a letter or digit (so a user
    /// name is never mistaken for a command-line option).
    public static func isValidUserID(_ user: String) -> Bool {
        guard let first = user.utf8.first, isAlphanumeric(first), user.utf8.count <= 64 else { return false }
        return user.utf8.allSatisfy { isNameByte($0) || $0 == UInt8(ascii: "@") }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return false
        }
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }
}
