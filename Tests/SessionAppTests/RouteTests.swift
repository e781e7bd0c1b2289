import Foundation
import XCTest
import FastCGIServer
import SessionCore
import SessionCrypto
@testable import SessionApp

/// The routes in process over the in-memory store: status codes, cookies, CSRF, login,
/// rotation and limits. End-to-end tests keep what crosses processes.
final class RouteTests: XCTestCase {
    func testCountStartsAndContinuesASession() throws {
        let app = try RouteHarness()
        let first = app.request("GET", "/count")
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.text, #"{"count":1}"#)
        let cookie = try XCTUnwrap(first.sessionCookie)
        XCTAssertEqual(first.setCookies, ["\(cookie); Path=/; Max-Age=43200; HttpOnly; SameSite=Lax"])
        let second = app.request("GET", "/count", cookie: cookie)
        XCTAssertEqual(second.text, #"{"count":2}"#)
        XCTAssertEqual(second.setCookies, [], "the browser has the cookie already: it is not re-sent")
        XCTAssertEqual(app.request("HEAD", "/count", cookie: cookie).status, 200, "HEAD is served like GET")
    }

    /// A worker's batch: the hot routes and those that need no I/O are answered promptly, each
    /// with its own session's answer; routes that may block are left to `respond(to:)`.
    func testABatchAnswersItsHotRoutesEachWithItsOwnSessionAndLeavesTheSlowOnes() throws {
        let app = try RouteHarness()
        let anonymous = try (0..<3).map { _ in try XCTUnwrap(app.request("GET", "/count").sessionCookie) }
        let ada = try app.login("ada"), bob = try app.login("bob")
        let batch = [
            app.makeRequest("GET", "/count", cookie: anonymous[0]), app.makeRequest("GET", "/me", cookie: ada.cookie),
            app.makeRequest("POST", "/login", headers: ["HTTP_ORIGIN": "http://\(RouteHarness.host)"],
                            body: #"{"user":"ada","password":"\#(RouteHarness.password)"}"#),
            app.makeRequest("GET", "/count", cookie: anonymous[1]), app.makeRequest("GET", "/auth", cookie: bob.cookie),
            app.makeRequest("GET", "/count"), app.makeRequest("GET", "/livez"), app.makeRequest("GET", "/nowhere"),
            app.makeRequest("GET", "/", cookie: anonymous[2]), app.makeRequest("GET", "/count", cookie: anonymous[1]),
            app.makeRequest("GET", "/me", cookie: bob.cookie),
        ]
        var answered: [Int: FastCGIResponse] = [:]
        app.responder.respondPromptly(to: batch) { index, response in
            XCTAssertNil(answered[index], "request \(index) answered twice")
            answered[index] = response
        }
        XCTAssertEqual(Set(answered.keys), [0, 1, 3, 4, 5, 6, 7, 9, 10], "the login and the page are left to respond(to:)")
        XCTAssertEqual(batch.indices.filter { app.responder.mayBlock(batch[$0]) }, [2, 8])
        XCTAssertEqual(answered[0]?.text, #"{"count":2}"#)
        XCTAssertEqual(answered[3]?.text, #"{"count":2}"#)
        XCTAssertEqual(answered[9]?.text, #"{"count":3}"#, "two visits of one session in one batch both count, in order")
        XCTAssertEqual(answered[1]?.json["user"] as? String, "ada")
        XCTAssertEqual(answered[10]?.json["user"] as? String, "bob")
        XCTAssertEqual(answered[4]?.status, 204)
        XCTAssertEqual(answered[4]?.header("X-Session-User"), "bob")
        XCTAssertEqual(answered[5]?.text, #"{"count":1}"#, "a new session, started within the batch")
        XCTAssertNotNil(answered[5]?.sessionCookie)
        XCTAssertEqual(answered[6]?.status, 200)
        XCTAssertEqual(answered[7]?.status, 404)
        XCTAssertEqual(app.responder.respond(to: batch[8]).status, 200, "the page, served on its own")
        XCTAssertEqual(app.request("GET", "/count", cookie: anonymous[2]).text, #"{"count":3}"#)
    }

    /// Ids the store does not know (expired, or made up) in a batch: their new sessions are
    /// created in one second round for the whole batch, not one call after another, and each
    /// request still gets its own new session.
    func testABatchStartsTheSessionsOfUnknownIDsInOneSecondRound() throws {
        let app = try RouteHarness()
        let known = try XCTUnwrap(app.request("GET", "/count").sessionCookie)
        let unknown = (0..<6).map { _ in "sid=\(SessionID.generate().rawValue)" }
        let batch = unknown.map { app.makeRequest("GET", "/count", cookie: $0) }
            + [app.makeRequest("GET", "/count", cookie: known), app.makeRequest("GET", "/count")]
        let roundsBefore = app.store.rounds, callsBefore = app.store.calls
        var answered: [Int: FastCGIResponse] = [:]
        app.responder.respondPromptly(to: batch) { index, response in answered[index] = response }
        XCTAssertEqual(app.store.rounds - roundsBefore, 2, "the first calls in one round, the new sessions in a second")
        XCTAssertEqual(app.store.calls - callsBefore, 8 + 6)
        XCTAssertEqual(answered.count, batch.count)
        var issued = Set<String>()
        for index in unknown.indices {
            XCTAssertEqual(answered[index]?.text, #"{"count":1}"#)
            let cookie = try XCTUnwrap(answered[index]?.sessionCookie, "request \(index) got no new session")
            XCTAssertNotEqual(cookie, unknown[index], "an unknown id was adopted")
            issued.insert(cookie)
        }
        XCTAssertEqual(issued.count, unknown.count, "each request got a session of its own")
        XCTAssertEqual(answered[6]?.text, #"{"count":2}"#)
        XCTAssertNil(answered[6]?.sessionCookie)
        XCTAssertEqual(answered[7]?.text, #"{"count":1}"#)
        for cookie in issued { XCTAssertEqual(app.request("GET", "/count", cookie: cookie).text, #"{"count":2}"#) }
    }

    /// Review finding 1: a response to the browser's own request from before the login, even one
    /// made before the rotation and delivered after the login's answer, must not put the old id
    /// back: responses for a session the browser already holds carry no Set-Cookie at all.
    func testResponsesNeverResendTheCookieThatWasPresented() throws {
        let app = try RouteHarness()
        let cookie = try XCTUnwrap(app.request("GET", "/", cookie: nil).sessionCookie)
        for path in ["/count", "/", "/me", "/auth", "/healthz"] {
            XCTAssertEqual(app.request("GET", path, cookie: cookie).setCookies, [], path)
        }
        let session = try app.login(cookie: cookie)
        for path in ["/count", "/", "/me", "/sessions", "/auth"] {
            XCTAssertEqual(app.request("GET", path, cookie: session.cookie).setCookies, [], path)
        }
        XCTAssertEqual(app.post("/attributes", cookie: session.cookie, json: #"{"a":"1"}"#, csrf: session.csrf).setCookies, [])
    }

    /// Review finding 1, in process: the whole account-takeover chain.
    func testAStrangerWhoKnowsThePreLoginIDGetsNothingAfterTheLogin() throws {
        let app = try RouteHarness()
        let planted = try XCTUnwrap(app.request("GET", "/count").sessionCookie)   // known to the attacker
        let victim = try app.login(cookie: planted)
        XCTAssertNotEqual(victim.cookie, planted)
        XCTAssertEqual(app.request("GET", "/me", cookie: victim.cookie).status, 200)
        let answers = [
            app.request("GET", "/count", cookie: planted),
            app.request("GET", "/", cookie: planted),
            app.request("GET", "/me", cookie: planted),
            app.request("GET", "/sessions", cookie: planted),
            app.request("GET", "/auth", cookie: planted),
            app.post("/attributes", cookie: planted, json: #"{"x":"1"}"#, csrf: victim.csrf),
            app.post("/logout", cookie: planted),
        ]
        for answer in answers {
            XCTAssertTrue(answer.setCookies.isEmpty, "a response to the old id set a cookie: \(answer.setCookies)")
            XCTAssertFalse(answer.text.contains("ada"), "the old id revealed the user: \(answer.text)")
            XCTAssertFalse(answer.text.contains(victim.csrf), "the old id revealed the CSRF token")
            XCTAssertFalse(answer.text.contains(String(victim.cookie.dropFirst(4))), "the old id revealed the new id")
            XCTAssertTrue([401, 409].contains(answer.status), "status \(answer.status): \(answer.text)")
        }
        let me = app.request("GET", "/me", cookie: victim.cookie)
        XCTAssertEqual(me.status, 200, "the victim is still logged in")
        XCTAssertEqual(me.json["attributes"] as? [String: String], [:], "nothing was written through the old id")
        XCTAssertEqual(me.json["count"] as? Int, 1, "nothing was counted through the old id")
    }

    func testTheBrowsersInFlightRequestsAfterARelogOfTheSameUserStillWork() throws {
        let app = try RouteHarness()
        let first = try app.login()
        let second = try app.login(cookie: first.cookie)
        let inFlight = app.request("GET", "/me", cookie: first.cookie)
        XCTAssertEqual(inFlight.status, 200, "same user: the alias serves the old cookie for the grace period")
        XCTAssertEqual(app.request("GET", "/count", cookie: first.cookie).sessionCookie, second.cookie,
                       "and may hand over the new cookie (it is the same user's session)")
    }

    func testLogoutEndsTheSessionAndAnAnonymousLogoutJustClearsTheCookie() throws {
        let app = try RouteHarness()
        let session = try app.login()
        XCTAssertEqual(app.post("/logout", cookie: session.cookie).status, 403, "a logged-in logout needs the CSRF token")
        let done = app.post("/logout", cookie: session.cookie, csrf: session.csrf)
        XCTAssertEqual(done.status, 200)
        XCTAssertEqual(done.setCookies.first, "sid=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
        XCTAssertEqual(app.request("GET", "/me", cookie: session.cookie).status, 401)
        // Review finding 9: an anonymous logout answered 403 instead of clearing the cookie.
        let anonymous = try XCTUnwrap(app.request("GET", "/count").sessionCookie)
        let cleared = app.post("/logout", cookie: anonymous)
        XCTAssertEqual(cleared.status, 200)
        XCTAssertTrue(try XCTUnwrap(cleared.setCookies.first).contains("Max-Age=0"))
        XCTAssertEqual(app.request("GET", "/count", cookie: anonymous).json["count"] as? Int, 1, "the anonymous session ended")
        XCTAssertEqual(app.post("/logout", cookie: nil).status, 200)
        XCTAssertEqual(app.request("POST", "/logout", cookie: anonymous, headers: ["HTTP_ORIGIN": "https://evil.example"], body: "{}").status, 403)
    }

    /// Review finding 7: reserved names stay reserved; a script error is a 500, never a 503.
    func testTheCounterCannotBeBrokenThroughAttributes() throws {
        let app = try RouteHarness()
        let session = try app.login()
        let refused = app.post("/attributes", cookie: session.cookie, json: #"{"count":"abc"}"#, csrf: session.csrf)
        XCTAssertEqual(refused.status, 400)
        XCTAssertEqual(app.post("/attributes", cookie: session.cookie, json: #"{"_u":"root"}"#, csrf: session.csrf).status, 400)
        XCTAssertEqual(app.request("GET", "/count", cookie: session.cookie).status, 200)
    }

    func testStoreFailuresAre500AndOutagesAre503EachWithItsOwnLogLine() throws {
        let app = try RouteHarness()
        app.store.failure = .failed("ERR Error running script: user_script:1: bad value")
        let failed = app.request("GET", "/count")
        XCTAssertEqual(failed.status, 500)
        XCTAssertEqual(failed.text, #"{"error":"internal error"}"#)
        XCTAssertNil(failed.header("Retry-After"))
        XCTAssertTrue(app.log.contains("level=error") && app.log.contains("msg=\"store error: ERR Error running script"), app.log)
        app.store.failure = .unavailable("redis timed out")
        let unavailable = app.request("GET", "/count")
        XCTAssertEqual(unavailable.status, 503)
        XCTAssertEqual(unavailable.header("Retry-After"), "1")
        XCTAssertTrue(app.log.contains("level=warning") && app.log.contains("msg=\"store unavailable: redis timed out\""), app.log)
        XCTAssertTrue(unavailable.setCookies.isEmpty)
    }

    /// Review finding 3: the page resolved the same session three times and listed sessions at
    /// two round trips each.
    func testThePageCostsABoundedNumberOfStoreCalls() throws {
        let app = try RouteHarness(["--max-sessions-per-user", "30"])
        var session = try app.login()
        for _ in 0..<25 { session = try app.login() }
        var before = app.store.calls
        let page = app.request("GET", "/", cookie: session.cookie)
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(app.store.calls - before, 3, "visit, then the index and every listed session in one call each")
        XCTAssertEqual(page.text.components(separatedBy: "<tr><td>").count - 1, 26)
        before = app.store.calls
        _ = app.request("GET", "/", cookie: nil)
        XCTAssertEqual(app.store.calls - before, 1, "an anonymous page is one store call")
        before = app.store.calls
        _ = app.request("GET", "/sessions", cookie: session.cookie)
        XCTAssertEqual(app.store.calls - before, 3)
    }

    /// A user active only behind the gateway stays logged in: `/auth` renews the idle timeout
    /// like any request (new-user review s20: it did not, so such a user was logged out one idle
    /// timeout after logging in); `--auth-slides no` keeps the old behaviour.
    func testTheGatewayKeepsAnActiveSessionAlive() throws {
        for (arguments, alive) in [([String](), true), (["--auth-slides", "no"], false)] {
            let app = try RouteHarness(["--idle-timeout", "60", "--absolute-timeout", "7200"] + arguments)
            let session = try app.login("bob")
            for step in 0..<4 {
                app.store.now += 40
                XCTAssertEqual(app.request("GET", "/auth", cookie: session.cookie).status, alive || step == 0 ? 204 : 401, "\(arguments) \(step)")
                if !alive && step == 1 { break }
            }
        }
    }

    /// A login keeps the session's creation time (it never extends the absolute lifetime), so
    /// its cookie's Max-Age is the time the session has left, not a full lifetime: the browser
    /// drops the cookie when the server does.
    func testTheCookieOfALoginLastsAsLongAsItsSession() throws {
        let app = try RouteHarness(["--idle-timeout", "3600", "--absolute-timeout", "7200"])
        let fresh = try app.login("bob")
        XCTAssertEqual(fresh.response.setCookies, ["\(fresh.cookie); Path=/; Max-Age=7200; HttpOnly; SameSite=Lax"])
        let anonymous = try XCTUnwrap(app.request("GET", "/count").sessionCookie)
        app.store.now += 1000
        XCTAssertEqual(app.request("GET", "/count", cookie: anonymous).text, #"{"count":2}"#)
        app.store.now += 1000
        let login = try app.login("ada", cookie: anonymous)
        XCTAssertEqual(login.response.setCookies, ["\(login.cookie); Path=/; Max-Age=5200; HttpOnly; SameSite=Lax"])
        app.store.now += 3000
        XCTAssertEqual(app.request("GET", "/me", cookie: login.cookie).status, 200)
        app.store.now += 2199
        XCTAssertEqual(app.request("GET", "/me", cookie: login.cookie).status, 200, "still alive one second before")
        app.store.now += 1
        XCTAssertEqual(app.request("GET", "/me", cookie: login.cookie).status, 401, "ended when the cookie does")
    }

    /// Password checks are bounded per instance (attack review s19: a flood of wrong passwords
    /// took every core, outlasted nginx's read timeout, and nginx then marked the instances
    /// failed for every route). A login that finds every check busy for `--login-wait-ms` gets
    /// a prompt 503 with Retry-After, without hashing; JSON or the page's form alike.
    func testALoginThatFindsEveryPasswordCheckBusyGets503AtOnce() throws {
        let app = try RouteHarness(["--login-concurrency", "1", "--login-wait-ms", "150"])
        let json = #"{"user":"ada","password":"\#(RouteHarness.password)"}"#
        var busy: FastCGIResponse?
        var waited = 0.0
        let held = app.responder.passwordChecks.run {
            let started = Date()
            busy = app.post("/login", cookie: nil, json: json)
            waited = Date().timeIntervalSince(started)
            return true
        }
        XCTAssertEqual(held, true)
        let answer = try XCTUnwrap(busy)
        XCTAssertEqual(answer.status, 503, answer.text)
        XCTAssertEqual(answer.header("Retry-After"), "1")
        XCTAssertEqual(answer.text, #"{"error":"too many logins at once; try again"}"#)
        XCTAssertNil(answer.sessionCookie, "no session for a login that was not checked")
        XCTAssertGreaterThanOrEqual(waited, 0.14, "it waited its turn first")
        XCTAssertLessThan(waited, 2)
        var form: FastCGIResponse?
        let callsBefore = app.store.calls
        let logged = try app.login("bob")
        let storeCalls = app.store.calls
        _ = app.responder.passwordChecks.run {
            form = app.request("POST", "/login", cookie: logged.cookie, headers: ["HTTP_ORIGIN": "http://\(RouteHarness.host)"],
                               body: "user=ada&password=x", contentType: "application/x-www-form-urlencoded")
            return true
        }
        XCTAssertGreaterThan(storeCalls, callsBefore)
        XCTAssertEqual(app.store.calls, storeCalls, "a busy answer asks the store nothing, even for a logged-in browser")
        XCTAssertEqual(form?.headers.filter { $0.name == "Retry-After" }.count, 1)
        XCTAssertEqual(form?.status, 503)
        XCTAssertTrue(form?.text.contains("Too many logins") == true, form?.text ?? "")
        XCTAssertEqual(form?.header("Retry-After"), "1")
        XCTAssertEqual(try app.login("ada").response.status, 200, "free again afterwards")
        let scrape = app.request("GET", "/metrics", headers: ["SESSION_FCGI_INTERNAL": "1"]).text
        XCTAssertTrue(scrape.contains(#"session_events_total{event="login_busy"} 2"#), scrape)
    }

    func testLoginsPastTheCapEndTheOldestSession() throws {
        let app = try RouteHarness()
        let oldest = try app.login()
        app.store.now += 1
        for _ in 0..<20 { _ = try app.login(); app.store.now += 1 }
        XCTAssertEqual(app.request("GET", "/me", cookie: oldest.cookie).status, 401, "the oldest of 21 sessions ended")
        let newest = try app.login()
        let listed = try XCTUnwrap(app.request("GET", "/sessions", cookie: newest.cookie).json["sessions"] as? [[String: Any]])
        XCTAssertEqual(listed.count, 20)
    }

    func testCSRFAndOriginChecks() throws {
        let app = try RouteHarness()
        let session = try app.login()
        XCTAssertEqual(app.post("/attributes", cookie: session.cookie, json: #"{"a":"1"}"#).status, 403, "no token")
        XCTAssertEqual(app.post("/attributes", cookie: session.cookie, json: #"{"a":"1"}"#, csrf: "forged").status, 403)
        // A JSON body's csrf_token is not taken as the token (it would be stored as an
        // attribute too): only the header, or a form post's field.
        XCTAssertEqual(app.post("/attributes", cookie: session.cookie, json: #"{"csrf_token":"\#(session.csrf)","a":"1"}"#).status, 403)
        XCTAssertEqual(app.request("POST", "/attributes", cookie: session.cookie,
                                   headers: ["HTTP_ORIGIN": "https://evil.example", "HTTP_X_CSRF_TOKEN": session.csrf], body: #"{"a":"1"}"#).status, 403)
        XCTAssertEqual(app.request("POST", "/attributes", cookie: session.cookie,
                                   headers: ["HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_X_CSRF_TOKEN": session.csrf], body: #"{"a":"1"}"#).status, 403)
        XCTAssertEqual(app.post("/attributes", cookie: session.cookie, json: #"{"a":"1"}"#, csrf: session.csrf).status, 200)
        XCTAssertEqual(app.post("/attributes", cookie: session.cookie, json: #"{"big":"\#(String(repeating: "x", count: 20_000))"}"#,
                                csrf: session.csrf).status, 413)
    }

    /// Review finding 2 (Swift side): the login redirect percent-encodes the original URI.
    func testLoginRedirectNeverCarriesARawLineBreak() throws {
        let app = try RouteHarness()
        let cases: [(String, String)] = [
            ("/private/%0d%0aSet-Cookie:%20sid=x", "/?next=/private/%250d%250aSet-Cookie%3A%2520sid%3Dx"),
            ("/private/a?x=1&y=2", "/?next=/private/a%3Fx%3D1%26y%3D2"),
            ("//evil.example/", "/"), ("/\\evil", "/"), ("/private/\r\nX: 1", "/"), ("http://evil.example/", "/"),
        ]
        for (uri, location) in cases {
            var params = FastCGIParams()
            for (name, value) in [("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/login-redirect"), ("REQUEST_URI", uri)] {
                params.append(name: Array(name.utf8), value: Array(value.utf8))
            }
            let response = app.responder.respond(to: FastCGIRequest(params: params))
            XCTAssertEqual(response.status, 302)
            XCTAssertEqual(response.header("Location"), location, uri)
        }
    }

    /// The login page carries `next` in its form but never shows it (attack review s19: a link
    /// to `/?next=/Your-session-expired.Call-555-0100...` put a stranger's words on the page).
    func testTheLoginPageNeverShowsTheNextPath() throws {
        let app = try RouteHarness()
        let page = app.request("GET", "/?next=/Your-session-expired.Call-support-at-555-0100").text
        XCTAssertTrue(page.contains("Log in to continue to the page you asked for."), page)
        XCTAssertEqual(page.components(separatedBy: "Your-session-expired").count - 1,
                       page.components(separatedBy: "value=\"/Your-session-expired").count - 1, "only inside the hidden field: \(page)")
    }

    func testAdminRevocationNeedsTheExactTokenAndEndsEverySession() throws {
        let app = try RouteHarness()
        let ada1 = try app.login(), ada2 = try app.login(), bob = try app.login("bob")
        func revoke(_ authorization: String?) -> FastCGIResponse {
            var headers: [String: String] = [:]
            if let authorization { headers["HTTP_AUTHORIZATION"] = authorization }
            return app.request("POST", "/admin/revoke-user", headers: headers, body: #"{"user":"ada"}"#)
        }
        for wrong in [nil, "Bearer", "Bearer x", "Bearer " + RouteHarness.adminToken + "x", "Bearer " + RouteHarness.adminToken.dropLast(),
                      "Basic " + RouteHarness.adminToken] {
            XCTAssertEqual(revoke(wrong).status, 401, wrong ?? "none")
        }
        let done = revoke("Bearer " + RouteHarness.adminToken)
        XCTAssertEqual(done.status, 200)
        XCTAssertEqual(done.json["ended"] as? String ?? (done.json["ended"] as? Int).map(String.init), "2")
        XCTAssertEqual(app.request("GET", "/me", cookie: ada1.cookie).status, 401)
        XCTAssertEqual(app.request("GET", "/me", cookie: ada2.cookie).status, 401)
        XCTAssertEqual(app.request("GET", "/me", cookie: bob.cookie).status, 200)
    }

    func testForgedSignedCookiesNeverReachTheStore() throws {
        let app = try RouteHarness(["--cookie-signing-keys", "Yk3vQ9pLx2RmT7wZs4NcJ8bHd6FgA1eU"])
        let session = try app.login()
        XCTAssertEqual(session.cookie.count, 4 + 32 + 1 + 43)
        let id = String(session.cookie.dropFirst(4).prefix(32))
        let before = app.store.calls
        for forged in ["sid=\(id)", "sid=\(id).\(String(repeating: "A", count: 43))"] {
            XCTAssertEqual(app.request("GET", "/me", cookie: forged).status, 401, forged)
        }
        XCTAssertEqual(app.store.calls, before, "a forged cookie reached the store")
        XCTAssertEqual(app.request("GET", "/me", cookie: session.cookie).status, 200)
    }

    /// Review finding 9: only the first Cookie header was read (nginx 1.22 passes each header
    /// line as its own param).
    func testTheSessionCookieIsFoundInAnyCookieHeader() throws {
        let app = try RouteHarness()
        let cookie = try XCTUnwrap(app.request("GET", "/count").sessionCookie)
        var params = FastCGIParams()
        for (name, value) in [("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/count"), ("HTTP_COOKIE", "other=1; sid=garbage"), ("HTTP_COOKIE", cookie)] {
            params.append(name: Array(name.utf8), value: Array(value.utf8))
        }
        let response = app.responder.respond(to: FastCGIRequest(params: params))
        XCTAssertEqual(response.text, #"{"count":2}"#)
        XCTAssertEqual(response.setCookies, [])
    }

    /// Metrics are served to the internal nginx server only, and count what happened.
    func testMetricsCountRequestsAndRefusedIdsForTheInternalServerOnly() throws {
        let app = try RouteHarness(["--cookie-signing-keys", "Yk3vQ9pLx2RmT7wZs4NcJ8bHd6FgA1eU"])
        let cookie = try XCTUnwrap(app.request("GET", "/count").sessionCookie)
        _ = app.request("GET", "/count", cookie: cookie)
        _ = app.request("GET", "/count", cookie: "sid=" + SessionID.generate().rawValue + "." + String(repeating: "A", count: 43))
        _ = app.request("GET", "/me", cookie: cookie)
        // Unsigned (a cookie from before signing was turned on) and not an id at all.
        XCTAssertEqual(app.request("GET", "/me", cookie: "sid=" + SessionID.generate().rawValue).status, 401)
        XCTAssertEqual(app.request("GET", "/me", cookie: "sid=short").status, 401)
        let ended = try XCTUnwrap(app.request("GET", "/count").sessionCookie)
        _ = try app.store.destroy([XCTUnwrap(SessionID(validating: ended.dropFirst(4).prefix(SessionID.length)))])
        XCTAssertEqual(app.request("GET", "/count", cookie: ended).status, 200, "a new session in its place")
        XCTAssertEqual(app.request("GET", "/metrics").status, 404, "no metrics without the internal server's param")
        let scrape = app.request("GET", "/metrics", headers: ["SESSION_FCGI_INTERNAL": "1"])
        XCTAssertEqual(scrape.status, 200)
        XCTAssertEqual(scrape.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        let text = scrape.text
        XCTAssertTrue(text.contains(#"session_http_requests_total{route="/count",status="200"} 5"#), text)
        XCTAssertTrue(text.contains(#"session_http_requests_total{route="/me",status="401"} 3"#), text)
        XCTAssertTrue(text.contains(#"session_ids_refused_total{reason="forged"} 1"#), text)
        XCTAssertTrue(text.contains(#"session_ids_refused_total{reason="expired"} 1"#), "a signed id whose session ended: \(text)")
        XCTAssertTrue(text.contains(#"session_ids_refused_total{reason="unknown"} 0"#), text)
        XCTAssertTrue(text.contains(#"session_ids_refused_total{reason="malformed"} 2"#), text)
        XCTAssertTrue(text.contains(#"session_http_request_duration_seconds_count{route="/count"} 5"#), text)
        XCTAssertTrue(text.contains("session_build_info{version=\"\(ProductVersion.number)\",build=\"\(ProductVersion.build)\",hiredis=\"0.14."), text)
        XCTAssertEqual(ProductVersion.build.count, 12, "a digest of the executable, not 'unknown'")
        for series in ["process_cpu_seconds_total", "process_start_time_seconds", "process_resident_memory_bytes",
                       "process_virtual_memory_bytes", "process_open_fds", "process_max_fds"] {
            let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix(series + " ") }, series)
            XCTAssertGreaterThan(try XCTUnwrap(Double(line.split(separator: " ")[1])), 0, String(line))
        }
        XCTAssertFalse(text.contains(String(cookie.dropFirst(4).prefix(32))), "no session id in metrics")
        _ = app.request("GET", "/nothing/\(UUID().uuidString)")
        XCTAssertTrue(app.request("GET", "/metrics", headers: ["SESSION_FCGI_INTERNAL": "1"]).text.contains(#"route="unknown""#),
                      "unknown paths share one label, whatever a client sends")
    }

    /// SIGHUP's reload: a new users file and a new signing key take effect for the next request.
    func testReloadedSettingsApplyToTheNextRequest() throws {
        let app = try RouteHarness()
        let before = try app.login()
        let hash = try XCTUnwrap(PasswordHash.make(Array("new password 123".utf8), iterations: 10_000)).encoded
        let signer = HMACSessionIDSigner(keys: [Array("Yk3vQ9pLx2RmT7wZs4NcJ8bHd6FgA1eU".utf8)])
        app.settings.replace(with: ReloadableSettings(users: UsersFile(text: "carol:\(hash)\n"),
                                                     cookies: SessionCookieCodec(configuration: app.configuration.session, signer: signer),
                                                     adminToken: nil))
        XCTAssertEqual(app.post("/login", cookie: nil, json: #"{"user":"carol","password":"new password 123"}"#).status, 200)
        XCTAssertEqual(app.post("/login", cookie: nil, json: #"{"user":"ada","password":"\#(RouteHarness.password)"}"#).status, 401)
        XCTAssertEqual(app.request("GET", "/me", cookie: before.cookie).status, 401, "unsigned cookies are refused once signing is on")
        XCTAssertEqual(app.request("POST", "/admin/revoke-user", headers: ["HTTP_AUTHORIZATION": "Bearer " + RouteHarness.adminToken],
                                   body: #"{"user":"ada"}"#).status, 404, "the admin token was removed")
    }

    func testBadRequestsGetClearAnswers() throws {
        let app = try RouteHarness()
        XCTAssertEqual(app.request("GET", "/nothing").status, 404)
        let wrong = app.request("DELETE", "/count")
        XCTAssertEqual(wrong.status, 405)
        XCTAssertEqual(wrong.header("Allow"), "GET, HEAD")
        XCTAssertEqual(app.request("GET", "/count", cookie: String(repeating: "c=1;", count: 3000)).status, 431)
        XCTAssertEqual(app.responder.respond(to: FastCGIRequest(params: ["REQUEST_METHOD": "POST", "DOCUMENT_URI": "/login"],
                                                                bodyProblem: .tooLarge(limit: 10))).status, 413)
        XCTAssertEqual(app.post("/login", cookie: nil, json: "{").status, 400)
        XCTAssertEqual(app.post("/login", cookie: nil, json: #"{"user":"ada","password":"wrong"}"#).status, 401)
        XCTAssertEqual(app.post("/login", cookie: nil, json: #"{"user":"nobody","password":"wrong"}"#).text, #"{"error":"wrong user or password"}"#)
        XCTAssertEqual(app.request("GET", "/livez").status, 200)
        XCTAssertEqual(app.request("GET", "/healthz").status, 200)
    }

    func testLogsNeverHoldSessionIDsOrCookies() throws {
        let app = try RouteHarness()
        let planted = try XCTUnwrap(app.request("GET", "/count").sessionCookie)
        let session = try app.login(cookie: planted)
        _ = app.post("/logout", cookie: session.cookie, csrf: session.csrf)
        _ = app.post("/login", cookie: session.cookie, json: #"{"user":"ada","password":"wrong"}"#)
        app.store.failure = .failed("boom")
        _ = app.request("GET", "/count", cookie: session.cookie)
        let log = app.log
        XCTAssertTrue(log.contains("msg=login event=login session=") && log.contains("msg=logout event=destroyed session=")
                      && log.contains("event=login_refused"), log)
        XCTAssertTrue(log.contains("level=debug") && log.contains("msg=request"), "debug logs every request: \(log)")
        for secret in [planted, session.cookie, session.csrf].map({ $0.hasPrefix("sid=") ? String($0.dropFirst(4)) : $0 }) {
            XCTAssertFalse(log.contains(secret), "the log holds a secret")
        }
        XCTAssertFalse(log.contains(RouteHarness.password))
    }

    /// Operator review s21: a refused login named neither the user nor the client, so nothing
    /// could act on a guessing run. Now both, but a name that is no user's (maybe a password
    /// typed in the wrong field) is never logged.
    func testARefusedLoginLogsTheClientAndAKnownUserOnly() throws {
        let app = try RouteHarness()
        _ = app.post("/login", cookie: nil, json: #"{"user":"ada","password":"wrong"}"#)
        _ = app.post("/login", cookie: nil, json: #"{"user":"Hunter2-secret","password":"wrong"}"#)
        let refused = app.log.split(separator: "\n").filter { $0.contains("event=login_refused") }
        XCTAssertEqual(refused.count, 2, app.log)
        XCTAssertTrue(refused[0].contains("user=ada") && refused[0].contains("known_user=yes") && refused[0].contains("client="), String(refused[0]))
        XCTAssertTrue(refused[1].contains("known_user=no") && !refused[1].contains("user=Hunter2"), String(refused[1]))
        XCTAssertFalse(app.log.contains("Hunter2-secret"))
    }
}
