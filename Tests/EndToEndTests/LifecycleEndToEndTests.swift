import Foundation
import XCTest
import RedisClient
import TestSupport

/// Login, rotation, logout, revocation, timeouts, CSRF and signed cookies through real nginx,
/// two spawn-fcgi instances and a real redis-server.
final class LifecycleEndToEndTests: XCTestCase {
    static let password = "correct horse battery staple"
    static let adminToken = "a8Kq2ZxW7mVt4NpR9sLc3HyB6dFg1JuE0oTi"

    /// A users file with `ada` and `bob`, hashed by the binary's own `hash-password`.
    static func usersFile() throws -> URL {
        let directory = try Paths.temporaryDirectory("users")
        var lines: [String] = []
        for user in ["ada", "bob"] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Paths.sessionFCGIBinary)
            process.arguments = ["hash-password"]
            let input = Pipe(), output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            input.fileHandleForWriting.write(Data((password + "\n").utf8))
            try input.fileHandleForWriting.close()
            let hash = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            lines.append("\(user):" + hash.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let file = directory.appendingPathComponent("users")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    private func makeStack(_ extra: [String] = []) throws -> SessionStack {
        try SessionStack(instanceCount: 2, threads: 16,
                         extraArguments: ["--users-file", Self.usersFile().path, "--admin-token", Self.adminToken] + extra)
    }

    private struct Login {
        let cookie: String
        let csrf: String
        /// The whole Set-Cookie header of the login response.
        var setCookie: String?
    }

    private func login(_ stack: SessionStack, user: String = "ada", cookie: String? = nil, form: Bool = false) throws -> Login {
        var headers: [(String, String)] = [("Origin", "http://127.0.0.1:\(stack.nginxPort)")]
        if let cookie { headers.append(("Cookie", cookie)) }
        let body: [UInt8]
        if form {
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            body = Array("user=\(user)&password=\(Self.password.replacingOccurrences(of: " ", with: "+"))".utf8)
        } else {
            headers.append(("Content-Type", "application/json"))
            body = Array("{\"user\":\"\(user)\",\"password\":\"\(Self.password)\"}".utf8)
        }
        let response = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/login", headers: headers, body: body)
        let id = try XCTUnwrap(response.setCookieValue())
        if form {
            // A browser form post is answered with a redirect to the page.
            XCTAssertEqual(response.status, 303, response.text)
            XCTAssertEqual(response.header("Location"), "/")
            let me = try stack.get("/me", cookie: "sid=\(id)")
            return Login(cookie: "sid=\(id)", csrf: try XCTUnwrap(json(me)["csrfToken"] as? String), setCookie: response.header("Set-Cookie"))
        }
        XCTAssertEqual(response.status, 200, response.text)
        let csrf = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["csrfToken"] as? String)
        return Login(cookie: "sid=\(id)", csrf: csrf, setCookie: response.header("Set-Cookie"))
    }

    private func json(_ response: HTTPResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
    }

    private static func post(_ stack: SessionStack, _ path: String, _ login: Login?, cookie: String? = nil, token: String? = nil,
                      body: String = "{}", origin: String? = nil) throws -> HTTPResponse {
        var headers: [(String, String)] = [("Content-Type", "application/json"),
                                           ("Origin", origin ?? "http://127.0.0.1:\(stack.nginxPort)")]
        if let cookie = cookie ?? login?.cookie { headers.append(("Cookie", cookie)) }
        if let token = token ?? login?.csrf { headers.append(("X-CSRF-Token", token)) }
        return try HTTPClient.request(port: stack.nginxPort, method: "POST", path: path, headers: headers, body: Array(body.utf8))
    }

    func testLoginRotatesTheIDAndMeShowsTheUser() throws {
        let stack = try makeStack()
        defer { stack.stop() }
        let anonymous = try XCTUnwrap(stack.get("/count").setCookieValue())
        let session = try login(stack, cookie: "sid=\(anonymous)")
        XCTAssertNotEqual(session.cookie, "sid=\(anonymous)", "login must rotate the id")
        let me = try stack.get("/me", cookie: session.cookie)
        XCTAssertEqual(me.status, 200)
        XCTAssertEqual(json(me)["user"] as? String, "ada")
        XCTAssertEqual(json(me)["count"] as? Int, 1, "data survives the rotation")
        XCTAssertEqual(try stack.get("/me").status, 401)
        // Form posts work too.
        XCTAssertEqual(json(try stack.get("/me", cookie: try login(stack, user: "bob", form: true).cookie))["user"] as? String, "bob")
    }

    func testWrongPasswordsAndCrossSiteLoginsAreRefused() throws {
        let stack = try makeStack()
        defer { stack.stop() }
        for body in ["{\"user\":\"ada\",\"password\":\"nope\"}", "{\"user\":\"mallory\",\"password\":\"x\"}"] {
            let response = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/login",
                                                  headers: [("Content-Type", "application/json")], body: Array(body.utf8))
            XCTAssertEqual(response.status, 401)
            XCTAssertEqual(response.text, "{\"error\":\"wrong user or password\"}")
            XCTAssertTrue(response.headers("Set-Cookie").isEmpty)
        }
        for body in ["{", "[1]", "{\"user\":{\"a\":1}}", "", "{\"user\":\"ada\"}"] {
            let response = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/login",
                                                  headers: [("Content-Type", "application/json")], body: Array(body.utf8))
            XCTAssertEqual(response.status, 400, "body \(body)")
        }
        let crossSite = try Self.post(stack, "/login", nil, body: "{\"user\":\"ada\",\"password\":\"\(Self.password)\"}",
                                 origin: "https://evil.example")
        XCTAssertEqual(crossSite.status, 403)
    }

    func testPasswordGuessingIsSlowedByNginx() throws {
        let stack = try makeStack()
        defer { stack.stop() }
        var statuses: [Int] = []
        // A name per attempt: session-fcgi's own limit per user name (--login-failure-limit)
        // would answer 429 after ten failures of one name, before nginx's per-address limit.
        for attempt in 0..<40 {
            let response = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/login",
                                                  headers: [("Content-Type", "application/json")],
                                                  body: Array("{\"user\":\"guesser\(attempt)\",\"password\":\"guess\"}".utf8))
            statuses.append(response.status)
            if response.status == 429 {
                // In the API's format, and saying when to come back (one attempt frees a second).
                XCTAssertEqual(response.header("Content-Type"), "application/json")
                XCTAssertEqual(response.header("Retry-After"), "1")
                XCTAssertEqual(response.header("Cache-Control"), "no-store")
            }
        }
        XCTAssertEqual(Set(statuses.prefix(30)), [401], "the burst allowance answers normally")
        XCTAssertTrue(statuses.contains(429), "past the burst, nginx refuses with 429: \(statuses)")
        XCTAssertEqual(Set(statuses), [401, 429])
    }

    func testRotationDuringParallelRequestsLogsNobodyOut() throws {
        let stack = try makeStack()
        defer { stack.stop() }
        let first = try login(stack)
        let results = Failures()
        let group = DispatchGroup()
        // The browser's in-flight requests still carry the old cookie while it logs in again.
        for _ in 0..<8 {
            group.enter()
            DispatchQueue.global().async {
                for _ in 0..<20 {
                    let response = try? stack.get("/me", cookie: first.cookie)
                    if response?.status != 200 { results.record() }
                }
                group.leave()
            }
        }
        let second = try login(stack, cookie: first.cookie)
        group.wait()
        XCTAssertEqual(results.count, 0, "requests with the rotated-away id were refused during the grace period")
        XCTAssertEqual(try stack.get("/me", cookie: second.cookie).status, 200)
    }

    func testParallelWritesToDifferentAttributesAllSurvive() throws {
        let stack = try makeStack()
        defer { stack.stop() }
        let session = try login(stack)
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 16) { writer in
            for field in 0..<4 {
                let response = try? Self.post(stack, "/attributes", session, body: "{\"w\(writer)_\(field)\":\"v\(writer)\"}")
                if response?.status != 200 { failures.record() }
            }
        }
        XCTAssertEqual(failures.count, 0)
        let attributes = try XCTUnwrap(json(try stack.get("/me", cookie: session.cookie))["attributes"] as? [String: String])
        XCTAssertEqual(attributes.keys.filter { $0.hasPrefix("w") }.count, 64, "every concurrent write must survive")
        // null removes; reserved names are refused.
        XCTAssertEqual(try Self.post(stack, "/attributes", session, body: "{\"w0_0\":null}").status, 200)
        XCTAssertEqual(try Self.post(stack, "/attributes", session, body: "{\"_u\":\"root\"}").status, 400)
        XCTAssertNil((json(try stack.get("/me", cookie: session.cookie))["attributes"] as? [String: String])?["w0_0"])
    }

    func testLogoutDuringInFlightWritesStaysLoggedOut() throws {
        let stack = try makeStack()
        defer { stack.stop() }
        let session = try login(stack)
        let id = String(session.cookie.dropFirst("sid=".count))
        let group = DispatchGroup()
        for writer in 0..<8 {
            group.enter()
            DispatchQueue.global().async {
                for field in 0..<15 { _ = try? Self.post(stack, "/attributes", session, body: "{\"x\(writer)_\(field)\":\"1\"}") }
                group.leave()
            }
        }
        usleep(20_000)
        let logout = try Self.post(stack, "/logout", session)
        XCTAssertEqual(logout.status, 200)
        XCTAssertTrue(try XCTUnwrap(logout.header("Set-Cookie")).contains("Max-Age=0"))
        XCTAssertEqual(logout.header("Cache-Control"), "no-store")
        group.wait()
        XCTAssertEqual(try stack.get("/me", cookie: session.cookie).status, 401)
        XCTAssertEqual(try stack.redisSend(RedisCommand("EXISTS", "sid_" + id), key: "sid_" + id).integer, 0,
                       "a write that raced the logout brought the session back")
    }

    func testUsersListAndEndTheirOwnSessions() throws {
        let stack = try makeStack()
        defer { stack.stop() }
        let phone = try login(stack)
        let laptop = try login(stack)
        let listed = try XCTUnwrap(json(try stack.get("/sessions", cookie: laptop.cookie))["sessions"] as? [[String: Any]])
        XCTAssertEqual(listed.count, 2)
        XCTAssertEqual(listed.filter { $0["current"] as? Bool == true }.count, 1)
        let other = try XCTUnwrap(listed.first { $0["current"] as? Bool == false }?["handle"] as? String)
        XCTAssertFalse(phone.cookie.contains(other), "the handle must not be the session id")
        var headers: [(String, String)] = [("Cookie", laptop.cookie), ("X-CSRF-Token", laptop.csrf)]
        XCTAssertEqual(try HTTPClient.request(port: stack.nginxPort, method: "DELETE", path: "/sessions/\(other)", headers: headers).status, 204)
        XCTAssertEqual(try stack.get("/me", cookie: phone.cookie).status, 401)
        XCTAssertEqual(try stack.get("/me", cookie: laptop.cookie).status, 200)
        XCTAssertEqual(try HTTPClient.request(port: stack.nginxPort, method: "DELETE", path: "/sessions/\(other)", headers: headers).status, 404)
        headers[1] = ("X-CSRF-Token", "wrong")
        XCTAssertEqual(try HTTPClient.request(port: stack.nginxPort, method: "DELETE", path: "/sessions/x", headers: headers).status, 403)
    }

    func testRevokeAllTakesEffectOnBothInstancesAtTheNextRequest() throws {
        let stack = try makeStack()
        defer { stack.stop() }
        let ada1 = try login(stack), ada2 = try login(stack), bob = try login(stack, user: "bob")
        for port in stack.instancePorts {
            XCTAssertEqual(try FastCGIClient.get(port: port, path: "/me", cookie: ada1.cookie).status, 200)
        }
        // Not through the public nginx server.
        let hidden = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/admin/revoke-user",
                                            headers: [("Authorization", "Bearer \(Self.adminToken)"), ("Content-Type", "application/json")],
                                            body: Array("{\"user\":\"ada\"}".utf8))
        XCTAssertEqual(hidden.status, 404)
        // Straight to one instance: the token is required.
        let port = stack.instancePorts[0]
        let unauthorized = try FastCGIClient.request(port: port, params: ["REQUEST_METHOD": "POST", "DOCUMENT_URI": "/admin/revoke-user",
                                                                          "CONTENT_TYPE": "application/json"], body: Array("{\"user\":\"ada\"}".utf8))
        XCTAssertEqual(unauthorized.status, 401)
        let revoked = try FastCGIClient.request(port: port, params: ["REQUEST_METHOD": "POST", "DOCUMENT_URI": "/admin/revoke-user",
                                                                     "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": "Bearer \(Self.adminToken)"],
                                                body: Array("{\"user\":\"ada\"}".utf8))
        XCTAssertEqual(revoked.status, 200)
        for instance in stack.instancePorts {
            XCTAssertEqual(try FastCGIClient.get(port: instance, path: "/me", cookie: ada1.cookie).status, 401, "instance \(instance)")
            XCTAssertEqual(try FastCGIClient.get(port: instance, path: "/me", cookie: ada2.cookie).status, 401, "instance \(instance)")
            XCTAssertEqual(try FastCGIClient.get(port: instance, path: "/me", cookie: bob.cookie).status, 200)
        }
        // The operators' CLI does the same.
        let cli = Process()
        cli.executableURL = URL(fileURLWithPath: Paths.sessionFCGIBinary)
        cli.arguments = ["revoke-user", "bob", "--redis-url", stack.redisURL] + stack.redisArguments
        cli.standardOutput = FileHandle.nullDevice
        try cli.run()
        cli.waitUntilExit()
        XCTAssertEqual(cli.terminationStatus, 0)
        XCTAssertEqual(try stack.get("/me", cookie: bob.cookie).status, 401)
    }

    func testCSRFTokenAndOriginAreRequiredForStateChanges() throws {
        let stack = try makeStack()
        defer { stack.stop() }
        let session = try login(stack)
        XCTAssertEqual(try Self.post(stack, "/logout", session, token: "forged").status, 403)
        XCTAssertEqual(try Self.post(stack, "/attributes", session, body: "{\"a\":\"1\"}", origin: "https://evil.example").status, 403)
        XCTAssertEqual(try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/logout",
                                              headers: [("Cookie", session.cookie)]).status, 403, "no token")
        XCTAssertEqual(try stack.get("/me", cookie: session.cookie).status, 200, "refused requests change nothing")
        // The token also works as a form field.
        let form = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/logout",
                                          headers: [("Cookie", session.cookie), ("Content-Type", "application/x-www-form-urlencoded")],
                                          body: Array("csrf_token=\(session.csrf)".utf8))
        XCTAssertEqual(form.status, 303)
        XCTAssertTrue(try XCTUnwrap(form.header("Set-Cookie")).contains("Max-Age=0"))
        XCTAssertEqual(try stack.get("/me", cookie: session.cookie).status, 401)
    }

    /// `--touch-interval` reaches Redis through nginx: requests within it leave the last-seen
    /// time and the TTL as they were (no write for a read), the first one after it renews both.
    func testTouchIntervalSpacesRenewals() throws {
        let stack = try makeStack(["--idle-timeout", "60", "--touch-interval", "3"])
        defer { stack.stop() }
        let session = try login(stack)
        let key = "sid_" + session.cookie.dropFirst("sid=".count)
        let ttl = { () throws -> Int64? in try stack.redisSend(RedisCommand("TTL", key), key: key).integer }
        let lastSeen = { () throws -> Int? in self.json(try stack.get("/me", cookie: session.cookie))["lastSeen"] as? Int }
        let first = try XCTUnwrap(lastSeen())
        // Redis counts whole seconds: 1.1 s after the login is less than 3 s after the second it
        // was made in, and 1.1 + 2 s is at least 3 s after it.
        Thread.sleep(forTimeInterval: 1.1)
        for _ in 0..<3 { XCTAssertEqual(try stack.get("/count", cookie: session.cookie).status, 200) }
        XCTAssertEqual(try lastSeen(), first, "renewed within the touch interval")
        XCTAssertLessThan(try XCTUnwrap(ttl()), 60, "the TTL was renewed within the touch interval")
        Thread.sleep(forTimeInterval: 2)
        XCTAssertEqual(try stack.get("/count", cookie: session.cookie).status, 200)
        // 60 when read within half a second of the renewal (Redis rounds), 59 on a slow machine;
        // not renewed, it would be 57 by now.
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(ttl()), 59, "the first request after the interval renews the idle timeout")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(lastSeen()), first + 3)
    }

    func testIdleAndAbsoluteTimeoutsExpireSessions() throws {
        let stack = try makeStack(["--idle-timeout", "1", "--absolute-timeout", "3"])
        defer { stack.stop() }
        let idle = try login(stack)
        let busy = try login(stack)
        XCTAssertTrue(try XCTUnwrap(busy.setCookie).contains("Max-Age=3"), "the cookie lives as long as the session may")
        // Requests every 0.6 s keep `busy` past its 1 s idle timeout, but not past its 3 s absolute
        // lifetime (counted from the login).
        // (Sent on a fixed schedule, so one slow answer does not push the later requests back.)
        let started = Date()
        var busyStatuses: [(seconds: Double, status: Int)] = []
        for tick in 1...6 {
            Thread.sleep(until: started.addingTimeInterval(0.6 * Double(tick)))
            let status = try stack.get("/me", cookie: busy.cookie).status
            busyStatuses.append((Date().timeIntervalSince(started), status))
        }
        XCTAssertEqual(try stack.get("/me", cookie: idle.cookie).status, 401, "idle timeout")
        // Redis counts whole seconds, so the 3 s lifetime may end up to 1 s early.
        let alive = busyStatuses.filter { $0.seconds < 1.95 }
        XCTAssertGreaterThanOrEqual(alive.count, 2, "\(busyStatuses)")
        XCTAssertEqual(Set(alive.map(\.status)), [200], "activity keeps the session past its idle timeout: \(busyStatuses)")
        XCTAssertEqual(busyStatuses.last?.status, 401, "absolute timeout: \(busyStatuses)")
    }

    func testForgedSignedCookiesNeverReachRedis() throws {
        let keys = "Yk3vQ9pLx2RmT7wZs4NcJ8bHd6FgA1eU" + "," + "p0Oi9Uy8Tr7Ee6Ww5Qq4Aa3Ss2Dd1Ff0Gg"
        let stack = try makeStack(["--cookie-signing-keys", keys])
        defer { stack.stop() }
        let session = try login(stack)
        let signed = String(session.cookie.dropFirst("sid=".count))
        XCTAssertEqual(signed.count, 32 + 1 + 43)
        XCTAssertEqual(try stack.get("/me", cookie: session.cookie).status, 200)
        let id = String(signed.prefix(32))
        try stack.resetRedisStatistics()
        for forged in ["sid=\(id)", "sid=\(id).\(String(repeating: "A", count: 43))", "sid=\(SessionIDs.random()).\(signed.suffix(43))"] {
            XCTAssertEqual(try stack.get("/me", cookie: forged).status, 401, forged)
        }
        let calls = try stack.redisCommandCalls()
        XCTAssertNil(calls["evalsha"], "a forged cookie reached Redis: \(calls)")
        XCTAssertNil(calls["eval"])
    }
}

enum SessionIDs {
    static func random() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        return String((0..<32).map { _ in alphabet.randomElement() ?? "A" })
    }
}
