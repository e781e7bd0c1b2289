import FastCGIServer

/// Response builders shared by the routes: every answer is JSON and never cached.
enum Responses {
    static let jsonContentType = "application/json"

    static func json(_ status: Int, _ body: [UInt8], extraHeaders: [(name: String, value: String)] = []) -> FastCGIResponse {
        var headers: [(name: String, value: String)] = [("Content-Type", jsonContentType), ("Cache-Control", "no-store")]
        headers.append(contentsOf: extraHeaders)
        return FastCGIResponse(status: status, headers: headers, body: body)
    }

    /// `{"error":"…"}` with the given status.
    static func error(_ status: Int, _ message: String, extraHeaders: [(name: String, value: String)] = []) -> FastCGIResponse {
        json(status, JSON.object([("error", JSON.quoted(message))]), extraHeaders: extraHeaders)
    }

    static func notFound() -> FastCGIResponse {
        error(404, "not found")
    }

    static func methodNotAllowed(allowed: [String]) -> FastCGIResponse {
        error(405, "method not allowed", extraHeaders: [("Allow", allowed.joined(separator: ", "))])
    }

    /// `303 See Other` to a same-site path (after a browser form post).
    static func seeOther(_ location: String, extraHeaders: [(name: String, value: String)] = []) -> FastCGIResponse {
        var headers: [(name: String, value: String)] = [("Location", location), ("Cache-Control", "no-store")]
        headers.append(contentsOf: extraHeaders)
        return FastCGIResponse(status: 303, headers: headers)
    }

    /// An HTML page with the security headers every page gets.
    static func html(_ status: Int, _ body: [UInt8], contentSecurityPolicy: String, extraHeaders: [(name: String, value: String)] = []) -> FastCGIResponse {
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
            ("Content-Security-Policy", contentSecurityPolicy), ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY"),
        ]
        headers.append(contentsOf: extraHeaders)
        return FastCGIResponse(status: status, headers: headers, body: body)
    }

    /// `GET /livez`: built once.
    static let alive = json(200, JSON.object([("status", JSON.quoted("alive"))]))

    /// The presented id was replaced by a login moments ago (the browser's own request from
    /// before it, most likely): no session is started and no cookie is set or expired, so the
    /// browser keeps the new cookie.
    static func superseded() -> FastCGIResponse {
        error(409, "this session id was just replaced; send the current cookie")
    }

    /// The store is down or slow: tell clients when to come back.
    static func storeUnavailable(retryAfterSeconds: Int) -> FastCGIResponse {
        error(503, "session store unavailable", extraHeaders: [("Retry-After", String(retryAfterSeconds))])
    }
}
