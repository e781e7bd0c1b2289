import Foundation
import XCTest
import TestSupport

/// What the nginx template adds to (or keeps out of) responses: the protected static folder's
/// security headers, and no client input echoed by the demo upstream.
final class TemplateHygieneEndToEndTests: XCTestCase {
    private func loggedInCookie(_ stack: SessionStack) throws -> String {
        let body = Array("{\"user\":\"ada\",\"password\":\"\(LifecycleEndToEndTests.password)\"}".utf8)
        let response = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/login",
                                              headers: [("Content-Type", "application/json")], body: body)
        XCTAssertEqual(response.status, 200, response.text)
        return "sid=" + (try XCTUnwrap(response.setCookieValue()))
    }

    /// Review finding: pages of the protected static folder had none of the page's security
    /// headers (the location's own add_header replaced the server's, and none were listed).
    func testProtectedStaticPagesCarryTheSecurityHeaders() throws {
        let stack = try SessionStack(instanceCount: 2, threads: 8,
                                     extraArguments: ["--users-file", LifecycleEndToEndTests.usersFile().path])
        defer { stack.stop() }
        let cookie = try loggedInCookie(stack)
        for (path, status) in [("/private/", 200), ("/private/index.html", 200), ("/private/missing.html", 404)] {
            let page = try stack.get(path, cookie: cookie)
            XCTAssertEqual(page.status, status, path)
            XCTAssertEqual(page.headers("X-Content-Type-Options"), ["nosniff"], path)
            XCTAssertEqual(page.headers("X-Frame-Options"), ["DENY"], path)
            XCTAssertEqual(page.headers("Referrer-Policy"), ["same-origin"], path)
            XCTAssertEqual(page.headers("Cache-Control"), ["no-store"], path)
            let policies = page.headers("Content-Security-Policy")
            XCTAssertEqual(policies.count, 1, path)
            let policy = try XCTUnwrap(policies.first)
            for directive in ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"] {
                XCTAssertTrue(policy.contains(directive), "\(path): \(directive) in \(policy)")
            }
            XCTAssertFalse(policy.contains("script-src"), "static pages need no scripts: \(policy)")
        }
        // The protected upstream's answers are the user's: never stored by a shared cache
        // (attack review s22; the demo upstream sends no Cache-Control of its own).
        let app = try stack.get("/app/", cookie: cookie)
        XCTAssertEqual(app.status, 200)
        XCTAssertEqual(app.headers("Cache-Control"), ["no-store"])
        // session-fcgi's own page keeps its own policy, not a second one from nginx.
        let home = try stack.get("/", cookie: cookie)
        XCTAssertEqual(home.headers("Content-Security-Policy").count, 1)
        XCTAssertTrue(try XCTUnwrap(home.header("Content-Security-Policy")).contains("style-src 'sha256-"))
    }

    /// Review finding (template hygiene): the demo upstream echoed the X-Session-User request
    /// header into its page as it came; any local process could make it show any text.
    func testTheDemoUpstreamNeverEchoesARequestHeader() throws {
        let stack = try SessionStack(instanceCount: 1, threads: 4,
                                     extraArguments: ["--users-file", LifecycleEndToEndTests.usersFile().path])
        defer { stack.stop() }
        for hostile in ["<script>alert(1)</script>", "ada<img src=x>", "ada\"; x", String(repeating: "a", count: 100)] {
            let direct = try HTTPClient.get(port: stack.appPort, path: "/", headers: [("X-Session-User", hostile)])
            XCTAssertEqual(direct.status, 200)
            XCTAssertFalse(direct.text.contains(hostile), "echoed: \(direct.text)")
            XCTAssertEqual(direct.text, "private app: hello (not a plain user name)\n")
            XCTAssertEqual(direct.header("X-Content-Type-Options"), "nosniff")
        }
        // Through the gateway the upstream learns the logged-in user, whatever the client sends.
        let cookie = try loggedInCookie(stack)
        let app = try stack.get("/app/", cookie: cookie, headers: [("X-Session-User", "<b>mallory</b>")])
        XCTAssertEqual(app.text, "private app: hello ada\n")
    }
}
