/// How sessions are named, kept and sent to browsers. Defaults follow OWASP's session guidance.
public struct SessionConfiguration: Equatable, Sendable {
    /// When the cookie carries `Secure`.
    public enum SecurePolicy: String, Sendable, CaseIterable {
        /// Only when the request came over HTTPS (FastCGI `HTTPS=on`).
        case whenHTTPS = "auto"
        /// Always, for deployments where TLS ends in front of nginx.
        case always
    }

    /// Cookie name (`sid`).
    public var cookieName: String
    /// Cookie `Path` (`/`).
    public var cookiePath: String
    /// Cookie `Domain`; `nil` (the default) makes a host-only cookie.
    public var cookieDomain: String?
    /// Cookie `SameSite` (`Lax`).
    public var sameSite: SameSite
    /// When the cookie is marked `Secure`.
    public var securePolicy: SecurePolicy
    /// The cookie's `Max-Age` in seconds (43200, the default absolute session lifetime). The
    /// cookie is only set when a session starts or its id changes, never re-sent to slide: the
    /// server enforces the idle timeout itself, and a cookie re-sent on every response could,
    /// arriving late, put back an id that a login has just replaced.
    public var maxAgeSeconds: Int
    /// `true`: the cookie carries `Max-Age`; `false`: a browser-session cookie without it,
    /// forgotten when the browser closes. The server enforces the timeouts either way.
    public var persistentCookie: Bool

    public init(
        cookieName: String = "sid",
        cookiePath: String = "/",
        cookieDomain: String? = nil,
        sameSite: SameSite = .lax,
        securePolicy: SecurePolicy = .whenHTTPS,
        maxAgeSeconds: Int = 43200,
        persistentCookie: Bool = true
    ) {
        self.cookieName = cookieName
        self.cookiePath = cookiePath
        self.cookieDomain = cookieDomain
        self.sameSite = sameSite
        self.securePolicy = securePolicy
        self.maxAgeSeconds = maxAgeSeconds
        self.persistentCookie = persistentCookie
    }

    /// Why browsers would refuse this cookie, or `nil` when they accept it. RFC 6265bis §4.1.3:
    /// a name starting with `__Host-` needs Secure, Path=/ and no Domain; `__Secure-` needs
    /// Secure. Browsers match both prefixes case-insensitively, so this does too.
    public var prefixViolation: String? {
        let name = cookieName.lowercased()
        if name.hasPrefix("__host-") {
            guard securePolicy == .always, cookiePath == "/", cookieDomain == nil else {
                return "a __Host- cookie needs Secure on every response, Path=/ and no Domain (--cookie-secure always, --cookie-path /, no --cookie-domain)"
            }
        } else if name.hasPrefix("__secure-"), securePolicy != .always {
            return "a __Secure- cookie needs Secure on every response (--cookie-secure always)"
        }
        return nil
    }

    /// The cookie that hands `id` to the browser.
    public func cookie(for id: SessionID, requestIsHTTPS: Bool) -> SetCookie {
        cookie(value: id.rawValue, requestIsHTTPS: requestIsHTTPS)
    }

    /// The cookie that makes the browser forget the session (`Max-Age=0`).
    public func expiredCookie(requestIsHTTPS: Bool) -> SetCookie {
        var cookie = cookie(value: "", requestIsHTTPS: requestIsHTTPS)
        cookie.maxAge = 0
        return cookie
    }

    func cookie(value: String, requestIsHTTPS: Bool) -> SetCookie {
        SetCookie(
            name: cookieName, value: value, path: cookiePath, domain: cookieDomain,
            maxAge: persistentCookie ? maxAgeSeconds : nil,
            secure: securePolicy == .always || requestIsHTTPS || sameSite == .none,
            httpOnly: true, sameSite: sameSite)
    }
}
