/// Turns session ids into `Set-Cookie` values and reads them back from `Cookie` headers: the one
/// path every route, the gateway and library users take, signed or not.
///
/// Unsigned, the cookie value is the id. With a signer it is `<id>.<signature in base64url>`
/// and a value whose signature does not verify is treated as absent. Attribute text
/// (`Path`, `Max-Age`, `Secure`, …) is built once from the configuration, so issuing a cookie
/// costs one string of name, value and a precomputed suffix.
public struct SessionCookieCodec: Sendable {
    public let configuration: SessionConfiguration
    public let signer: (any SessionIDSigner)?
    private let namePrefix: String
    private let plainSuffix: String
    private let secureSuffix: String
    private let signedValueLength: Int

    public init(configuration: SessionConfiguration, signer: (any SessionIDSigner)? = nil) {
        self.configuration = configuration
        self.signer = signer
        namePrefix = configuration.cookieName + "="
        let plain = configuration.cookie(value: "", requestIsHTTPS: false).headerValue
        let secure = configuration.cookie(value: "", requestIsHTTPS: true).headerValue
        plainSuffix = String(plain.dropFirst(namePrefix.count))
        secureSuffix = String(secure.dropFirst(namePrefix.count))
        signedValueLength = signer.map { SessionID.length + 1 + ($0.signatureLength * 4 + 2) / 3 } ?? SessionID.length
    }

    /// The cookie value carrying `id`.
    public func value(for id: SessionID) throws(SessionCookieError) -> String {
        guard let signer else { return id.rawValue }
        guard let signature = signer.signature(of: id), signature.count == signer.signatureLength else { throw .cannotSign }
        return id.rawValue + "." + Base64.encode(signature)
    }

    /// The `Set-Cookie` header value handing `id` to the browser. `secondsLeft`, the time the
    /// session has left before its absolute expiry, shortens `Max-Age` to it (a session that
    /// carried its creation time through a login), so the browser drops the cookie when the
    /// server does; `nil` (a new session) keeps the full lifetime.
    public func setCookieHeader(for id: SessionID, requestIsHTTPS: Bool, secondsLeft: Int? = nil) throws(SessionCookieError) -> String {
        let cookieValue = try value(for: id)
        if let secondsLeft, configuration.persistentCookie, secondsLeft < configuration.maxAgeSeconds {
            var cookie = configuration.cookie(value: cookieValue, requestIsHTTPS: requestIsHTTPS)
            cookie.maxAge = max(secondsLeft, 1)
            return cookie.headerValue
        }
        let suffix = requestIsHTTPS ? secureSuffix : plainSuffix
        var header = ""
        header.reserveCapacity(namePrefix.utf8.count + cookieValue.utf8.count + suffix.utf8.count)
        header += namePrefix
        header += cookieValue
        header += suffix
        return header
    }

    /// The `Set-Cookie` header value that makes the browser forget the session (`Max-Age=0`).
    public func expiredCookieHeader(requestIsHTTPS: Bool) -> String {
        configuration.expiredCookie(requestIsHTTPS: requestIsHTTPS).headerValue
    }

    /// The session id in one cookie value, or `nil` when it is malformed or, when signing,
    /// unsigned or forged. Never repairs a value.
    public func sessionID(fromCookieValue value: UnsafeBufferPointer<UInt8>) -> SessionID? {
        guard let signer else { return SessionID(validatingUTF8: value) }
        guard value.count == signedValueLength, value[SessionID.length] == UInt8(ascii: ".") else { return nil }
        guard let id = SessionID(validatingUTF8: UnsafeBufferPointer(rebasing: value[0..<SessionID.length])),
              let signature = Base64.decodeURL(String(decoding: UnsafeBufferPointer(rebasing: value[(SessionID.length + 1)...]), as: UTF8.self)),
              signature.count == signer.signatureLength
        else { return nil }
        return signer.isValid(signature, for: id) ? id : nil
    }

    /// What one `Cookie` header presents under the session cookie's name: the first valid id;
    /// else `.forged` when a value had the signed shape (`<id>.<signature>`) but its signature
    /// did not verify; else `.malformed` when there was a value; else `.absent`.
    public func inspect(cookieHeader bytes: UnsafeBufferPointer<UInt8>) -> CookiePresentation {
        var result = CookiePresentation.absent
        CookieHeader.forEachValue(named: configuration.cookieName, inUTF8: bytes) { value in
            if let id = sessionID(fromCookieValue: value) {
                result = .valid(id)
                return false
            }
            let looksSigned = signer != nil && value.count == signedValueLength && value[SessionID.length] == UInt8(ascii: ".")
                && SessionID(validatingUTF8: UnsafeBufferPointer(rebasing: value[0..<SessionID.length])) != nil
            if looksSigned { result = .forged } else if result == .absent { result = .malformed }
            return true
        }
        return result
    }

    /// The first valid session id among the cookies named `configuration.cookieName` in one
    /// `Cookie` header's raw bytes.
    public func presentedID(cookieHeader bytes: UnsafeBufferPointer<UInt8>) -> SessionID? {
        var found: SessionID?
        CookieHeader.forEachValue(named: configuration.cookieName, inUTF8: bytes) { value in
            found = sessionID(fromCookieValue: value)
            return found == nil
        }
        return found
    }

    /// The same for a header given as text.
    public func presentedID(cookieHeader: String) -> SessionID? {
        var header = cookieHeader
        return header.withUTF8 { presentedID(cookieHeader: $0) }
    }
}

/// What a request's cookie presents.
public enum CookiePresentation: Equatable, Sendable {
    case absent
    /// Present but not a session id (wrong length or alphabet, or unsigned when signing).
    case malformed
    /// An id with a signature that does not verify: made by someone without the key.
    case forged
    case valid(SessionID)
}

/// Why a cookie could not be issued.
public enum SessionCookieError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The signer could not sign (a libcrypto failure): no cookie is issued rather than an
    /// unsigned or wrongly signed one.
    case cannotSign

    public var description: String { "cannot sign the session cookie" }
}
