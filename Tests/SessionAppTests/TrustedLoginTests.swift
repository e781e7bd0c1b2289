import Foundation
import XCTest
import FastCGIServer
import SessionCore
import SessionCrypto
@testable import SessionApp

/// Logins an application vouches for (`TrustedLoginAssertion`, `GET /trusted-login`): the
/// assertion's checks, then the route over the in-memory store. The whole path through nginx's
/// X-Accel-Redirect is in Tests/deploy/test_trusted_login.py.
final class TrustedLoginTests: XCTestCase {
    static let key = "kT3vX9qL2mZ8wR5nB7cY4hJ6fD1sG0aPeUiOq"
    static let otherKey = "Zp8Lw2Qx7Nc4Rv9Tb6Ym1Ks3Jd5Hf0GaEuIo"

    /// The assertion fields as an application makes them, independently of the code under test.
    static func fields(user: String = "ada", expires: Int64? = nil, nonce: String = "n0nce-" + UUID().uuidString.replacingOccurrences(of: "-", with: ""),
                       next: String? = "/shop/", key: String = key) -> [String: String] {
        let expiry = expires ?? Int64(time(nil)) + 60
        let message = "session-store trusted-login v1\n\(user)\n\(expiry)\n\(nonce)\n\(next ?? "")"
        let mac = SessionCrypto.hmacSHA256(key: Array(key.utf8), message: Array(message.utf8)) ?? []
        var fields = ["user": user, "expires": String(expiry), "nonce": nonce, "mac": Base64.encode(mac)]
        if let next { fields["next"] = next }
        return fields
    }

    static func query(_ fields: [String: String]) -> String {
        fields.sorted { $0.key < $1.key }.map { "\($0.key)=\(FormURLEncoded.encode($0.value))" }.joined(separator: "&")
    }

    private func verify(_ fields: [String: String], keys: [String] = [key], now: Int64 = Int64(time(nil)))
        -> Result<TrustedLoginAssertion, TrustedLoginAssertion.Refusal> {
        TrustedLoginAssertion.verify(fields, keys: keys.map { Array($0.utf8) }, now: now)
    }

    func testAGoodAssertionPassesUnderAnyListedKey() throws {
        let fields = Self.fields()
        XCTAssertEqual(try verify(fields).get().user, "ada")
        XCTAssertEqual(try verify(fields).get().next, "/shop/")
        XCTAssertEqual(try verify(fields, keys: [Self.otherKey, Self.key]).get().nonce, fields["nonce"])
        XCTAssertEqual(try verify(Self.fields(next: nil)).get().next, "")
    }

    func testEveryCoveredFieldIsBoundByTheMAC() {
        let fields = Self.fields()
        for (name, value) in [("user", "bob"), ("expires", String(Int64(time(nil)) + 61)), ("nonce", "another-nonce-123456"), ("next", "/admin/")] {
            var changed = fields
            changed[name] = value
            XCTAssertEqual(verify(changed), .failure(.forged), "\(name) changed")
        }
        var withoutNext = fields
        withoutNext["next"] = nil
        XCTAssertEqual(verify(withoutNext), .failure(.forged), "next removed")
        XCTAssertEqual(verify(fields, keys: [Self.otherKey]), .failure(.forged), "another key")
        XCTAssertEqual(verify(Self.fields(key: Self.otherKey)), .failure(.forged))
    }

    func testTimeBoundsAndMalformedFields() {
        let now = Int64(time(nil))
        XCTAssertEqual(verify(Self.fields(expires: now - 1)), .failure(.expired))
        XCTAssertEqual(verify(Self.fields(expires: now + 301)), .failure(.tooFarAhead))
        XCTAssertNoThrow(try verify(Self.fields(expires: now + 300)).get())
        XCTAssertNoThrow(try verify(Self.fields(expires: now)).get())
        var fields = Self.fields()
        fields["mac"] = String(fields["mac"]!.dropLast(2))
        XCTAssertEqual(verify(fields), .failure(.malformed))
        for (name, value) in [("user", "ada smith"), ("user", ""), ("user", String(repeating: "a", count: 65)), ("expires", "-5"),
                              ("expires", "+60"), ("expires", "99999999999999999999"), ("nonce", "short"), ("nonce", "has space in it abcdef"),
                              ("nonce", String(repeating: "n", count: 129)), ("next", "/" + String(repeating: "x", count: 512))] {
            var changed = Self.fields()
            changed[name] = value
            XCTAssertEqual(verify(changed), .failure(.malformed), "\(name)=\(value.prefix(30))")
        }
        for name in ["user", "expires", "nonce", "mac"] {
            var missing = Self.fields()
            missing[name] = nil
            XCTAssertEqual(verify(missing), .failure(.malformed), "without \(name)")
        }
        XCTAssertEqual(verify(Self.fields(), keys: []), .failure(.forged))
    }

    // MARK: - The route

    private func harness() throws -> (RouteHarness, URL) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("trusted-keys-\(UUID().uuidString)")
        try "# keys\n\(Self.otherKey)\n\(Self.key)\n".write(to: file, atomically: true, encoding: .utf8)
        chmod(file.path, 0o600)
        return (try RouteHarness(["--trusted-login-keys-file", file.path]), file)
    }

    private func trustedLogin(_ app: RouteHarness, _ fields: [String: String], cookie: String? = nil, viaNginx: Bool = true) -> FastCGIResponse {
        app.request("GET", "/trusted-login?" + Self.query(fields), cookie: cookie,
                    headers: viaNginx ? ["SESSION_FCGI_TRUSTED_LOGIN": "1", "REMOTE_ADDR": "192.0.2.7"] : [:])
    }

    func testALoginRotatesTheSessionKeepsItsDataAndRevokeAllEndsIt() throws {
        let (app, file) = try harness()
        defer { try? FileManager.default.removeItem(at: file) }
        let anonymous = try XCTUnwrap(app.request("GET", "/count").sessionCookie)
        XCTAssertEqual(app.request("GET", "/count", cookie: anonymous).json["count"] as? Int, 2)

        let response = trustedLogin(app, Self.fields(next: "/shop/?tab=1"), cookie: anonymous)
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

    func testRefusalsAnswer403AndLogTheReason() throws {
        let (app, file) = try harness()
        defer { try? FileManager.default.removeItem(at: file) }
        var forged = Self.fields()
        forged["user"] = "bob"
        for (fields, reason) in [(forged, "forged"), (Self.fields(expires: Int64(time(nil)) - 10), "expired"),
                                 (Self.fields(expires: Int64(time(nil)) + 3600), "too_far_ahead"), (["user": "ada"], "malformed")] {
            let response = trustedLogin(app, fields)
            XCTAssertEqual(response.status, 403, reason)
            XCTAssertNil(response.sessionCookie)
            XCTAssertTrue(app.log.contains("reason=\(reason)"), reason)
        }
        XCTAssertTrue(app.log.contains("client=192.0.2.7"))
        let metrics = String(decoding: app.metrics.exposition(), as: UTF8.self).split(separator: "\n")
        XCTAssertTrue(metrics.contains { $0.contains("event=\"trusted_login_refused\"") && $0.hasSuffix(" 4") }, "\(metrics)")
        XCTAssertTrue(metrics.contains { $0.contains("event=\"login\"") && $0.hasSuffix(" 0") }, "no login was counted")
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

    func testKeysAreReloadedAndCheckedLikeSigningKeys() throws {
        let (app, file) = try harness()
        defer { try? FileManager.default.removeItem(at: file) }
        try "\(Self.otherKey)\n".write(to: file, atomically: true, encoding: .utf8)
        app.settings.replace(with: try app.configuration.loadReloadableSettings().settings)
        XCTAssertEqual(trustedLogin(app, Self.fields()).status, 403, "a key taken out of the file no longer verifies")
        XCTAssertEqual(trustedLogin(app, Self.fields(key: Self.otherKey)).status, 303)

        try "short\n".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try AppConfiguration.parse(arguments: ["--trusted-login-keys-file", file.path], environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("--trusted-login-keys-file"), "\(error)")
        }
    }
}
