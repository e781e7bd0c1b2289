/// Writes the session's `Set-Cookie` value with its attribute text built once from the
/// configuration: the per-request work is one string of name, id and a precomputed suffix.
/// The result always equals `configuration.cookie(for:requestIsHTTPS:).headerValue`.
public struct SessionCookieWriter: Sendable {
    private let namePrefix: String
    private let plainSuffix: String
    private let secureSuffix: String

    public init(configuration: SessionConfiguration) {
        namePrefix = configuration.cookieName + "="
        let plain = configuration.cookie(value: "", requestIsHTTPS: false).headerValue
        let secure = configuration.cookie(value: "", requestIsHTTPS: true).headerValue
        plainSuffix = String(plain.dropFirst(namePrefix.count))
        secureSuffix = String(secure.dropFirst(namePrefix.count))
    }

    /// The `Set-Cookie` header value handing `id` to the browser.
    public func headerValue(for id: SessionID, requestIsHTTPS: Bool) -> String {
        headerValue(value: id.rawValue, requestIsHTTPS: requestIsHTTPS)
    }

    /// The same for an already encoded cookie value (a signed id, say).
    public func headerValue(value cookieValue: String, requestIsHTTPS: Bool) -> String {
        let suffix = requestIsHTTPS ? secureSuffix : plainSuffix
        var value = ""
        value.reserveCapacity(namePrefix.utf8.count + cookieValue.utf8.count + suffix.utf8.count)
        value += namePrefix
        value += cookieValue
        value += suffix
        return value
    }
}
