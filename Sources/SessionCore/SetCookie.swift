/// The `SameSite` cookie attribute.
public enum SameSite: String, Sendable, CaseIterable {
    case strict = "Strict"
    case lax = "Lax"
    case none = "None"
}

/// A `Set-Cookie` header value built from typed fields (RFC 6265 §4.1).
public struct SetCookie: Equatable, Sendable {
    public var name: String
    public var value: String
    public var path: String?
    public var domain: String?
    /// Lifetime in seconds; `nil` makes a browser-session cookie, `0` deletes the cookie.
    public var maxAge: Int?
    public var secure: Bool
    public var httpOnly: Bool
    public var sameSite: SameSite?

    public init(
        name: String, value: String, path: String? = "/", domain: String? = nil, maxAge: Int? = nil,
        secure: Bool = false, httpOnly: Bool = true, sameSite: SameSite? = .lax
    ) {
        self.name = name
        self.value = value
        self.path = path
        self.domain = domain
        self.maxAge = maxAge
        self.secure = secure
        self.httpOnly = httpOnly
        self.sameSite = sameSite
    }

    /// The header value, for example `sid=…; Path=/; Max-Age=43200; HttpOnly; SameSite=Lax`.
    public var headerValue: String {
        var text = name + "=" + value
        if let path { text += "; Path=" + path }
        if let domain { text += "; Domain=" + domain }
        if let maxAge { text += "; Max-Age=" + String(maxAge) }
        if secure { text += "; Secure" }
        if httpOnly { text += "; HttpOnly" }
        if let sameSite { text += "; SameSite=" + sameSite.rawValue }
        return text
    }
}
