/// What a session's fields say, for every type that holds them (`SessionRecord`, read by id,
/// and `StoredSession`, read through a user's index).
public protocol SessionFields {
    /// Every hash field, values as the application wrote them.
    var fields: [String: String] { get }
}

extension SessionFields {
    public var createdAt: Int64 { Int64(fields[ReservedField.created] ?? "") ?? 0 }
    public var lastSeenAt: Int64 { Int64(fields[ReservedField.lastSeen] ?? "") ?? 0 }
    public var absoluteExpiresAt: Int64 { Int64(fields[ReservedField.absoluteExpiry] ?? "") ?? 0 }
    /// The public name of the session in its user's list (never the id).
    public var handle: String { fields[ReservedField.handle] ?? "" }
    public var userAgent: String? { fields[ReservedField.userAgent] }
    public var csrfToken: String? { fields[ReservedField.csrfToken] }
    /// The visit counter of `GET /count` and the page.
    public var visitCount: Int64 { Int64(fields[SessionNames.countField] ?? "") ?? 0 }

    /// The logged-in user, if any: only a valid user id counts (`SessionNames.isValidUserID`),
    /// so a value sealed at rest but read by a store without the keys (encryption turned off
    /// while sessions live) is nobody, never a user named `enc1:…`.
    public var user: String? {
        guard let user = fields[ReservedField.user], SessionNames.isValidUserID(user) else { return nil }
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
