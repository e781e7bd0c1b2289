import Foundation
import XCTest
import FastCGIServer
import SessionCore
import SessionCrypto
@testable import SessionApp

/// Logins an application vouches for (`TrustedLoginAssertion`, `GET /trusted-login`): the
/// assertion's checks, then the route over the in-memory store (whose clock decides expiry, as
/// Redis's does in production). The whole path through nginx's X-Accel-Redirect is in
/// Tests/deploy/test_trusted_login.py.
final class TrustedLoginTests: XCTestCase {
    static let key = "kT3vX9qL2mZ8wR5nB7cY4hJ6fD1sG0aPeUiOq"
    static let otherKey = "Zp8Lw2Qx7Nc4Rv9Tb6Ym1Ks3Jd5Hf0GaEuIo"

    /// The assertion fields as an application makes them, independently of the code under test.
    static func fields(user: String = "ada", expires: Int64 = 1_000_060, nonce: String = "n0nce-" + UUID().uuidString.replacingOccurrences(of: "-", with: ""),
                       next: String? = "/shop/", crossSite: String? = nil, key: String = key) -> [String: String] {
        let message = "session-store trusted-login v1\n\(user)\n\(expires)\n\(nonce)\n\(next ?? "")\n\(crossSite ?? "")"
        let mac = SessionCrypto.hmacSHA256(key: Array(key.utf8), message: Array(message.utf8)) ?? []
        var fields = ["user": user, "expires": String(expires), "nonce": nonce, "mac": Base64.encode(mac)]
        if let next { fields["next"] = next }
        if let crossSite { fields["cross_site"] = crossSite }
        return fields
    }

    static func query(_ fields: [String: String]) -> String {
        fields.sorted { $0.key < $1.key }.map { "\($0.key)=\(FormURLEncoded.encode($0.value))" }.joined(separator: "&")
    }

    private func verify(_ fields: [String: String], keys: [String] = [key]) -> Result<TrustedLoginAssertion, TrustedLoginAssertion.Refusal> {
        TrustedLoginAssertion.verify(fields, keys: keys.map { Array($0.utf8) })
    }

    func testAGoodAssertionPassesUnderAnyListedKey() throws {
        let fields = Self.fields()
        XCTAssertEqual(try verify(fields).get().user, "ada")
        XCTAssertEqual(try verify(fields).get().next, "/shop/")
        XCTAssertEqual(try verify(fields).get().allowsCrossSite, false)
        XCTAssertEqual(try verify(fields, keys: [Self.otherKey, Self.key]).get().nonce, fields["nonce"])
        XCTAssertEqual(try verify(Self.fields(next: nil)).get().next, "")
        XCTAssertEqual(try verify(Self.fields(crossSite: "allow")).get().allowsCrossSite, true)
    }

    /// The MAC covers the fields as sent (diff review s22: the expiry was covered as the
    /// number it parsed to, so a MAC over "01000060" did not verify).
    func testTheMACCoversTheExpiryAsSent() throws {
        let nonce = "nonce-as-sent-0123456789"
        let message = "session-store trusted-login v1\nada\n01000060\n\(nonce)\n\n"
        let mac = SessionCrypto.hmacSHA256(key: Array(Self.key.utf8), message: Array(message.utf8)) ?? []
        let fields = ["user": "ada", "expires": "01000060", "nonce": nonce, "mac": Base64.encode(mac)]
        XCTAssertEqual(try verify(fields).get().expires, 1_000_060)
    }

    func testEveryCoveredFieldIsBoundByTheMAC() {
        let fields = Self.fields()
        for (name, value) in [("user", "bob"), ("expires", "1000061"), ("nonce", "another-nonce-123456"), ("next", "/admin/"), ("cross_site", "allow")] {
            var changed = fields
            changed[name] = value
            XCTAssertEqual(verify(changed), .failure(.forged), "\(name) changed")
        }
        var withoutNext = fields
        withoutNext["next"] = nil
        XCTAssertEqual(verify(withoutNext), .failure(.forged), "next removed")
        var withoutCrossSite = Self.fields(crossSite: "allow")
        withoutCrossSite["cross_site"] = nil
        XCTAssertEqual(verify(withoutCrossSite), .failure(.forged), "cross_site removed")
        XCTAssertEqual(verify(fields, keys: [Self.otherKey]), .failure(.forged), "another key")
        XCTAssertEqual(verify(Self.fields(key: Self.otherKey)), .failure(.forged))
        XCTAssertEqual(verify(Self.fields(), keys: []), .failure(.forged))
    }

    func testMalformedFieldsAreRefusedBeforeTheMAC() {
        var fields = Self.fields()
        fields["mac"] = String(fields["mac"]!.dropLast(2))
        XCTAssertEqual(verify(fields), .failure(.malformed))
        for (name, value) in [("user", "ada smith"), ("user", ""), ("user", String(repeating: "a", count: 65)), ("expires", "-5"),
                              ("expires", "+60"), ("expires", ""), ("expires", "9999999999999999999"), ("nonce", "short"),
                              ("nonce", "has space in it abcdef"), ("nonce", String(repeating: "n", count: 129)),
                              ("next", "/" + String(repeating: "x", count: 2048)), ("cross_site", "yes")] {
            var changed = Self.fields()
            changed[name] = value
            XCTAssertEqual(verify(changed), .failure(.malformed), "\(name)=\(value.prefix(30))")
        }
        for name in ["user", "expires", "nonce", "mac"] {
            var missing = Self.fields()
            missing[name] = nil
            XCTAssertEqual(verify(missing), .failure(.malformed), "without \(name)")
        }
    }

    // MARK: - The route

    private func harness(_ extra: [String] = []) throws -> (RouteHarness, URL) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("trusted-keys-\(UUID().uuidString)")
        try "# keys\n\(Self.otherKey)\n\(Self.key)\n".write(to: file, atomically: true, encoding: .utf8)
        chmod(file.path, 0o600)
        return (try RouteHarness(["--trusted-login-keys-file", file.path] + extra), file)
    }

    /// The request nginx's internal location makes, with the browser's own headers.
    private func trustedLogin(_ app: RouteHarness, _ fields: [String: String], cookie: String? = nil, viaNginx: Bool = true,
                              browser: [String: String] = [:]) -> FastCGIResponse {
        var headers = browser
        if viaNginx { headers["SESSION_FCGI_TRUSTED_LOGIN"] = "1" }
        headers["REMOTE_ADDR"] = "192.0.2.7"
        return app.request("GET", "/trusted-login?" + Self.query(fields), cookie: cookie, headers: headers)
    }

    func testALoginRotatesTheSessionKeepsItsDataAndRevokeAllEndsIt() throws {
        let (app, file) = try harness()
        defer { try? FileManager.default.removeItem(at: file) }
        let anonymous = try XCTUnwrap(app.request("GET", "/count").sessionCookie)
        XCTAssertEqual(app.request("GET", "/count", cookie: anonymous).json["count"] as? Int, 2)

        let response = trustedLogin(app, Self.fields(next: "/shop/?tab=1"), cookie: anonymous,
                                    browser: ["HTTP_ORIGIN": "http://\(RouteHarness.host)", "HTTP_SEC_FETCH_SITE": "same-origin"])
        XCTAssertEqual(response.status, 303, response.text)
        XCTAssertEqual(response.headers.first { $0.name == "Location" }?.value, "/shop/?tab=1")
        XCTAssertEqual(response.headers.first { $0.name == "Cache-Control" }?.value, "no-store")
        let cookie = try XCTUnwrap(response.sessionCookie)
        XCTAssertNotEqual(cookie, anonymous, "the id is rotated at login")
        XCTAssertTrue(response.setCookies[0].contains("HttpOnly"))

        let me = app.request("GET", "/me", cookie: cookie)
        XCTAssertEqual(me.status, 200)
        XCTAssertEqual(me.json["user"] as? String, "ada")
        XCTAssertEqual(me.json["count"] as? Int, 2, "the session's data came along")
        XCTAssertEqual(app.request("GET", "/me", cookie: anonymous).status, 401, "the old id no longer logs anyone in")
        XCTAssertTrue(app.log.contains("event=login"), app.log)
        XCTAssertTrue(app.log.contains("via=trusted"), app.log)

        // Indexed like any login: the user's sessions list it, and revoke-all ends it.
        let sessions = app.request("GET", "/sessions", cookie: cookie)
        XCTAssertEqual((sessions.json["sessions"] as? [Any])?.count, 1, sessions.text)
        XCTAssertEqual(app.request("POST", "/admin/revoke-user", headers: ["HTTP_AUTHORIZATION": "Bearer " + RouteHarness.adminToken],
                                   body: #"{"user":"ada"}"#).status, 200)
        XCTAssertEqual(app.request("GET", "/me", cookie: cookie).status, 401)
    }

    func testAnAssertionLogsInOnce() throws {
        let (app, file) = try harness()
        defer { try? FileManager.default.removeItem(at: file) }
        let fields = Self.fields()
        XCTAssertEqual(trustedLogin(app, fields).status, 303)
        let replay = trustedLogin(app, fields)
        XCTAssertEqual(replay.status, 403)
        XCTAssertEqual(replay.text, #"{"error":"login refused"}"#)
        XCTAssertNil(replay.sessionCookie)
        XCTAssertTrue(app.log.contains("reason=replayed"), app.log)
        XCTAssertFalse(app.log.contains(fields["mac"]!), "the assertion is never logged")
        XCTAssertFalse(app.log.contains(fields["nonce"]!), "the assertion is never logged")
    }

    /// Attack review s22 (login CSRF): a cross-site form posted to the application with the
    /// attacker's password put the victim's browser into the attacker's session. Like POST
    /// /login, the route now refuses a browser request from another site, unless the
    /// application allowed it in the assertion (an OAuth callback arrives cross-site).
    func testACrossSiteRequestIsRefusedUnlessTheApplicationAllowedIt() throws {
        let (app, file) = try harness(["--allowed-origins", "https://partner.example"])
        defer { try? FileManager.default.removeItem(at: file) }
        for browser in [["HTTP_SEC_FETCH_SITE": "cross-site"], ["HTTP_ORIGIN": "https://evil.example"],
                        ["HTTP_ORIGIN": "https://evil.example", "HTTP_SEC_FETCH_SITE": "same-site"]] {
            let refused = trustedLogin(app, Self.fields(user: "mallory"), browser: browser)
            XCTAssertEqual(refused.status, 403, "\(browser)")
            XCTAssertNil(refused.sessionCookie)
        }
        XCTAssertTrue(app.log.contains("reason=cross_site"), app.log)
        XCTAssertEqual(trustedLogin(app, Self.fields(), browser: ["HTTP_ORIGIN": "https://partner.example"]).status, 303, "an allowed origin")
        XCTAssertEqual(trustedLogin(app, Self.fields(), browser: [:]).status, 303, "a request without either header (an old browser)")
        let callback = trustedLogin(app, Self.fields(crossSite: "allow"), browser: ["HTTP_SEC_FETCH_SITE": "cross-site"])
        XCTAssertEqual(callback.status, 303, "the application allowed it: an OAuth callback")
    }

    func testRefusalsAnswer403AndLogTheReason() throws {
        let (app, file) = try harness()
        defer { try? FileManager.default.removeItem(at: file) }
        var forged = Self.fields()
        forged["user"] = "bob"
        let now = app.store.now
        for (fields, reason) in [(forged, "forged"), (Self.fields(expires: now - 10), "expired"),
                                 (Self.fields(expires: now + 3600), "too_far_ahead"), (["user": "ada"], "malformed")] {
            let response = trustedLogin(app, fields)
            XCTAssertEqual(response.status, 403, reason)
            XCTAssertNil(response.sessionCookie)
            XCTAssertTrue(app.log.contains("reason=\(reason)"), reason)
        }
        XCTAssertTrue(app.log.contains("client=192.0.2.7"))
        let metrics = String(decoding: app.metrics.exposition(), as: UTF8.self).split(separator: "\n")
        XCTAssertTrue(metrics.contains { $0.contains("event=\"trusted_login_refused\"") && $0.hasSuffix(" 4") }, "\(metrics)")
        XCTAssertTrue(metrics.contains { $0.contains("event=\"login\"") && $0.hasSuffix(" 0") }, "no login was counted")

        // Expiry is the store's clock's to judge (one clock for every instance): an assertion
        // good now is refused once that clock has passed it, and was never claimed before.
        let late = Self.fields(expires: now + 30)
        app.store.now += 31
        XCTAssertEqual(trustedLogin(app, late).status, 403)
    }

    func testAnOverlongNextSendsTheBrowserHome() throws {
        let (app, file) = try harness()
        defer { try? FileManager.default.removeItem(at: file) }
        let response = trustedLogin(app, Self.fields(next: "/" + String(repeating: "x", count: 1500)))
        XCTAssertEqual(response.status, 303, "attack review s22: a next over 512 bytes refused a good login")
        XCTAssertEqual(response.headers.first { $0.name == "Location" }?.value, "/")
        for next in ["//evil.example/", "/\\evil.example", "https://evil.example/", "/a\r\nSet-Cookie: x=1"] {
            XCTAssertEqual(trustedLogin(app, Self.fields(next: next)).headers.first { $0.name == "Location" }?.value, "/", next)
        }
    }

    func testTheRouteIsClosedWithoutKeysOrOutsideNginxsInternalLocation() throws {
        let (app, file) = try harness()
        defer { try? FileManager.default.removeItem(at: file) }
        XCTAssertEqual(trustedLogin(app, Self.fields(), viaNginx: false).status, 404, "a client reaching the route directly")
        let closed = try RouteHarness()
        XCTAssertEqual(trustedLogin(closed, Self.fields()).status, 404, "no keys configured")
        XCTAssertEqual(app.request("POST", "/trusted-login", headers: ["SESSION_FCGI_TRUSTED_LOGIN": "1"]).status, 405)
    }

    func testAStoreOutageIsA503AndLogsNobodyIn() throws {
        let (app, file) = try harness()
        defer { try? FileManager.default.removeItem(at: file) }
        app.store.failure = .unavailable("test")
        let response = trustedLogin(app, Self.fields())
        XCTAssertEqual(response.status, 503)
        XCTAssertNil(response.sessionCookie)
    }

    /// Attack review s22: emptying the keys file, or putting a short key in place of a leaked
    /// one, left the leaked key working after SIGHUP. The keys file now fails closed.
    func testKeysFollowTheirFileAndFailClosed() throws {
        let (app, file) = try harness()
        defer { try? FileManager.default.removeItem(at: file) }
        func reload() throws { app.settings.replace(with: try app.configuration.loadReloadableSettings().settings) }
        try "\(Self.otherKey)\n".write(to: file, atomically: true, encoding: .utf8)
        try reload()
        XCTAssertEqual(trustedLogin(app, Self.fields()).status, 403, "a key taken out of the file no longer verifies")
        XCTAssertEqual(trustedLogin(app, Self.fields(key: Self.otherKey)).status, 303)

        for withdrawn in ["# no keys: trusted login off\n", "", "short\n"] {
            try withdrawn.write(to: file, atomically: true, encoding: .utf8)
            try reload()
            XCTAssertEqual(trustedLogin(app, Self.fields(key: Self.otherKey)).status, 404, "after writing \(withdrawn.debugDescription)")
        }
        XCTAssertEqual(try app.configuration.loadReloadableSettings().settings.trustedLoginProblem?.contains("at least 32"), true)
        try FileManager.default.removeItem(at: file)
        try reload()
        XCTAssertEqual(trustedLogin(app, Self.fields(key: Self.otherKey)).status, 404, "a deleted file")

        try "short\n".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try AppConfiguration.parse(arguments: ["--trusted-login-keys-file", file.path], environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("--trusted-login-keys-file"), "\(error)")
        }
    }
}
