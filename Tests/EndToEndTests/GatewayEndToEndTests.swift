import Foundation
import XCTest
import RedisClient
import TestSupport

/// nginx `auth_request` with session-fcgi's `/auth`: a static folder and a second upstream
/// protected by the same Redis session.
final class GatewayEndToEndTests: XCTestCase {
    private func loggedInCookie(_ stack: SessionStack) throws -> String {
        let body = Array("{\"user\":\"ada\",\"password\":\"\(LifecycleEndToEndTests.password)\"}".utf8)
        let response = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/login",
                                              headers: [("Content-Type", "application/json")], body: body)
        XCTAssertEqual(response.status, 200, response.text)
        return "sid=" + (try XCTUnwrap(response.setCookieValue()))
    }

    func testGatewayProtectsAStaticFolderAndASecondUpstream() throws {
        let stack = try SessionStack(instanceCount: 2, threads: 16,
                                     extraArguments: ["--users-file", LifecycleEndToEndTests.usersFile().path])
        defer { stack.stop() }
        // Without a session (or with an anonymous one, or a forged id): sent to the login page.
        let anonymous = "sid=" + (try XCTUnwrap(stack.get("/count").setCookieValue()))
        for cookie in [nil, anonymous, "sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            for path in ["/private/", "/app/anything"] {
                let response = try stack.get(path, cookie: cookie)
                XCTAssertEqual(response.status, 302, "\(path) with \(cookie ?? "no cookie")")
                XCTAssertTrue(try XCTUnwrap(response.header("Location")).hasSuffix("/?next=\(path)"))
            }
        }
        let cookie = try loggedInCookie(stack)
        let page = try stack.get("/private/", cookie: cookie)
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.text.contains("Private area"))
        // The upstream learns the user from nginx; a client cannot claim to be someone else.
        let app = try stack.get("/app/", cookie: cookie, headers: [("X-Session-User", "mallory"), ("X-Session-Expires-In", "999999999")])
        XCTAssertEqual(app.status, 200)
        XCTAssertEqual(app.text, "private app: hello ada\n")
        // So is the time the session has left (attack review s19: a client's own header went
        // through): the gateway's figure, at most the idle timeout.
        let expiresIn = try XCTUnwrap(Int(try XCTUnwrap(app.header("X-Demo-Session-Expires-In"))))
        XCTAssertTrue((1...1800).contains(expiresIn), "\(expiresIn)")
        // After logout the gateway closes again.
        let me = try stack.get("/me", cookie: cookie)
        let token = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(me.body)) as? [String: Any])?["csrfToken"] as? String)
        XCTAssertEqual(try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/logout",
                                              headers: [("Cookie", cookie), ("X-CSRF-Token", token)]).status, 200)
        XCTAssertEqual(try stack.get("/private/", cookie: cookie).status, 302)
    }

    /// When the session store is unavailable, a protected location answers as /count does: 503
    /// with Retry-After (nginx's auth_request turned /auth's 503 into a 500, as if the service
    /// were broken); also when no instance answers at all.
    func testProtectedLocationsAnswer503WhileTheStoreIsUnavailable() throws {
        let stack = try SessionStack(instanceCount: 1, threads: 4,
                                     extraArguments: ["--users-file", LifecycleEndToEndTests.usersFile().path, "--redis-timeout-ms", "200"])
        defer { stack.stop() }
        let cookie = try loggedInCookie(stack)
        XCTAssertEqual(try stack.get("/private/", cookie: cookie).status, 200)
        let redisPID = try XCTUnwrap(stack.redis.pid)
        XCTAssertEqual(kill(redisPID, SIGSTOP), 0)
        defer { kill(redisPID, SIGCONT) }
        for path in ["/private/", "/app/anything"] {
            let response = try stack.get(path, cookie: cookie)
            XCTAssertEqual(response.status, 503, "\(path): \(response.text)")
            XCTAssertEqual(response.header("Retry-After"), "1", path)
            XCTAssertEqual(response.text, #"{"error":"session store unavailable"}"#, path)
        }
        XCTAssertEqual(kill(redisPID, SIGCONT), 0)
        try waitUntil("the gateway recovers by itself", timeout: 5) { try stack.get("/private/", cookie: cookie).status == 200 }
        stack.killInstance(port: stack.instancePorts[0])
        let noInstance = try stack.get("/private/", cookie: cookie)
        XCTAssertEqual(noInstance.status, 503, noInstance.text)
        XCTAssertEqual(noInstance.header("Retry-After"), "1", "no instance answered: the default")
        XCTAssertEqual(noInstance.header("Cache-Control"), "no-store")
    }

    /// Finding 2 of the review: `return 302 /?next=$uri` put the decoded path into `Location`,
    /// so an encoded CR LF in a link added any header (a Set-Cookie planting an attacker's id).
    func testEncodedLineBreaksInAProtectedPathCannotAddHeaders() throws {
        let stack = try SessionStack(instanceCount: 1, threads: 4)
        defer { stack.stop() }
        let planted = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        for path in ["/private/%0d%0aSet-Cookie:%20sid=\(planted)", "/private/%0aSet-Cookie:%20sid=\(planted)",
                     "/app/x%0d%0aX-Injected:%201?a=1&b=%0d%0aX-Injected:%202", "/private/%E2%80%A8%0d%0a%0d%0a<script>"] {
            let response = try stack.get(path)
            XCTAssertEqual(response.status, 302, path)
            XCTAssertTrue(response.headers("Set-Cookie").isEmpty, "a header was injected by \(path): \(response.headers)")
            XCTAssertNil(response.header("X-Injected"), path)
            let location = try XCTUnwrap(response.header("Location"))
            XCTAssertTrue(location.hasPrefix("/?next=") || location == "/", location)
            XCTAssertFalse(location.contains("\r") || location.contains("\n") || location.contains(" "), location)
        }
        // The original path and query survive the round trip through `next`, encoded.
        let plain = try stack.get("/private/a%20b?x=1&y=2")
        XCTAssertEqual(plain.header("Location"), "/?next=/private/a%2520b%3Fx%3D1%26y%3D2")
    }

    func testAuthEndpointNeitherSlidesTheSessionNorSetsCookies() throws {
        let stack = try SessionStack(instanceCount: 2, threads: 16,
                                     extraArguments: ["--users-file", LifecycleEndToEndTests.usersFile().path])
        defer { stack.stop() }
        let cookie = try loggedInCookie(stack)
        let id = String(cookie.dropFirst("sid=".count))
        let redis = stack.redis.connection()
        _ = try redis.send(RedisCommand("EXPIRE", "sid_" + id, "100"))
        let lastSeen = try redis.send(RedisCommand("HGET", "sid_" + id, "_s")).text
        Thread.sleep(forTimeInterval: 1.1)
        let port = try XCTUnwrap(stack.instancePorts.first)
        let auth = try FastCGIClient.get(port: port, path: "/auth", cookie: cookie)
        XCTAssertEqual(auth.status, 204)
        XCTAssertEqual(auth.header("X-Session-User"), "ada")
        let remaining = try XCTUnwrap(Int(auth.header("X-Session-Expires-In") ?? ""))
        XCTAssertTrue((1700...1800).contains(remaining), "remaining \(remaining)")
        XCTAssertTrue(auth.headers("Set-Cookie").isEmpty)
        let ttl = try XCTUnwrap(redis.send(RedisCommand("TTL", "sid_" + id)).integer)
        XCTAssertLessThanOrEqual(ttl, 99, "the auth check must not slide the session")
        XCTAssertEqual(try redis.send(RedisCommand("HGET", "sid_" + id, "_s")).text, lastSeen)
        XCTAssertEqual(try FastCGIClient.get(port: port, path: "/auth").status, 401)
    }

    func testPageIsHTMLWithStrictHeadersAndCountsVisits() throws {
        let stack = try SessionStack(instanceCount: 2, threads: 8)
        defer { stack.stop() }
        let first = try stack.get("/")
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.header("Content-Type"), "text/html; charset=utf-8")
        XCTAssertEqual(first.header("Cache-Control"), "no-store")
        let policy = try XCTUnwrap(first.header("Content-Security-Policy"))
        XCTAssertTrue(policy.hasPrefix("default-src 'none'; style-src 'sha256-"))
        XCTAssertTrue(first.text.contains("id=\"count\">1</span>"))
        let cookie = "sid=" + (try XCTUnwrap(first.setCookieValue()))
        XCTAssertTrue(try stack.get("/", cookie: cookie).text.contains("id=\"count\">2</span>"))
        // Reflected input is escaped; off-site "next" targets are dropped.
        let hostile = try stack.get("/?next=//evil.example/%22%3E%3Cscript%3E")
        XCTAssertFalse(hostile.text.contains("<script>"))
        XCTAssertTrue(hostile.text.contains("name=\"next\" value=\"/\""))
    }
}
