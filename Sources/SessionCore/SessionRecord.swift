/// A session as stored: its id and every hash field. Field names starting with `_` are the
/// store's own (`ReservedField`), `count` is the visit counter (`SessionNames.countField`), and
/// the rest are application attributes. Values are as the application wrote them (a store that
/// seals them at rest has opened them).
public struct SessionRecord: SessionFields, Equatable, Sendable {
    public let id: SessionID
    public let fields: [String: String]
    /// The store's clock when the record was read (seconds since 1970).
    public let now: Int64

    public init(id: SessionID, fields: [String: String], now: Int64) {
        self.id = id
        self.fields = fields
        self.now = now
    }

    /// Seconds until the absolute expiry, as of `now`; `nil` when the record does not carry it.
    public var secondsLeft: Int? {
        guard let expiry = fields[ReservedField.absoluteExpiry].flatMap({ Int64($0) }) else { return nil }
        return Int(clamping: expiry - now)
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

    /// Whether a store that seals values at rest (`SessionValueSealer`) seals this field:
    /// application attributes, and the store's fields that identify a person or are a secret —
    /// the user (`_u`), the user agent (`_ua`) and the CSRF token (`_t`). What stays plain, and
    /// why: the visit counter and the times (`count`, `_c`, `_s`, `_x`), because the scripts do
    /// arithmetic and expiry on them atomically inside the store; the handle (`_h`), a random
    /// public name that the user index must hold in clear anyway; the rotation marks (`_alias`
    /// holds no id in clear when ids are hashed, `_sup` holds `1`).
    public static func isSealedAtRest(_ name: String) -> Bool {
        isAttribute(name) || name == ReservedField.user || name == ReservedField.userAgent || name == ReservedField.csrfToken
    }

    /// Names a client may set: 1–64 characters of `A–Z a–z 0–9 . _ : -`, not starting with `_`
    /// and not `count` (both reserved for the store).
    public static func isValidAttribute(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: "_"), name.utf8.count <= 64, name != countField else { return false }
        return name.utf8.allSatisfy { isNameByte($0) || $0 == UInt8(ascii: ":") }
    }

    /// 1–64 characters of `A–Z a–z 0–9 . _ @ + -`, starting with a letter or digit (so a user
    /// name is never mistaken for a command-line option); e-mail addresses with a `+` tag fit.
    public static func isValidUserID(_ user: String) -> Bool {
        guard let first = user.utf8.first, isAlphanumeric(first), user.utf8.count <= 64 else { return false }
        return user.utf8.allSatisfy { isNameByte($0) || $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: "+") }
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
