import Foundation
import XCTest
import FastCGIServer
import SessionCore
@testable import SessionApp

/// `--login-failure-limit`: failed logins are counted per user name, whatever the addresses
/// they come from (attack review s22: rotating IPv6 addresses got around nginx's per-address
/// limit, and nothing limited guesses at one account).
final class LoginFailureLimitTests: XCTestCase {
    private func wrong(_ app: RouteHarness, _ user: String) -> FastCGIResponse {
        app.post("/login", cookie: nil, json: #"{"user":"\#(user)","password":"guess"}"#)
    }

    func testPastTheLimitNoGuessIsCheckedUntilTheWindowEnds() throws {
        let app = try RouteHarness()
        for attempt in 1...10 {
            XCTAssertEqual(wrong(app, "ada").status, 401, "attempt \(attempt)")
        }
        let throttled = app.post("/login", cookie: nil, json: #"{"user":"ada","password":"\#(RouteHarness.password)"}"#)
        XCTAssertEqual(throttled.status, 429, "even the right password is not checked past the limit")
        XCTAssertEqual(throttled.text, #"{"error":"too many failed logins for this user; try again later"}"#)
        XCTAssertEqual(throttled.headers.first { $0.name == "Retry-After" }?.value, "900")
        XCTAssertNil(throttled.sessionCookie)
        XCTAssertTrue(app.log.contains("event=login_throttled"), app.log)
        XCTAssertEqual(try app.login("bob").response.status, 200, "another user is not affected")

        app.store.now += 600
        XCTAssertEqual(wrong(app, "ada").headers.first { $0.name == "Retry-After" }?.value, "300")
        app.store.now += 301
        XCTAssertEqual(try app.login("ada").response.status, 200, "the window ended")
    }

    func testAnyNameCountsSoTheAnswerTellsNothingAboutWhoExists() throws {
        let app = try RouteHarness()
        var known: [Int] = [], unknown: [Int] = []
        for _ in 1...11 {
            known.append(wrong(app, "ada").status)
            unknown.append(wrong(app, "mallory").status)
        }
        XCTAssertEqual(known, Array(repeating: 401, count: 10) + [429])
        XCTAssertEqual(known, unknown)
        XCTAssertEqual(wrong(app, "ada").text, wrong(app, "mallory").text)
        XCTAssertFalse(app.log.contains("user=mallory"), "a name that is no user's is never logged (it may be a password)")
    }

    /// Only failed logins count: a right password takes its own attempt back, and does not
    /// reset the count (diff review s22: a reset told a guesser that the name is a user's who
    /// had just logged in).
    func testASuccessfulLoginIsNotCountedAndResetsNothing() throws {
        let app = try RouteHarness()
        for _ in 1...9 { XCTAssertEqual(wrong(app, "ada").status, 401) }
        XCTAssertEqual(try app.login("ada").response.status, 200)
        XCTAssertEqual(try app.login("ada").response.status, 200)
        XCTAssertEqual(wrong(app, "ada").status, 401, "the tenth failure")
        XCTAssertEqual(wrong(app, "ada").status, 429)
    }

    /// Diff review s22: a failure recorded after the check, with its error ignored, let every
    /// guess through once the store refused writes (a full Redis). Now the attempt is counted
    /// before the password is checked, and a store that cannot count gets no check at all.
    func testAStoreThatCannotCountGets503AndNoPasswordCheck() throws {
        let app = try RouteHarness()
        let before = app.store.calls
        app.store.failingCall = before + 1
        let response = app.post("/login", cookie: nil, json: #"{"user":"ada","password":"\#(RouteHarness.password)"}"#)
        XCTAssertEqual(response.status, 503)
        XCTAssertNil(response.sessionCookie)
        XCTAssertEqual(app.store.calls, before + 1, "nothing after the refused count")
        XCTAssertFalse(app.log.contains("event=login_refused"), "no password was checked: \(app.log)")
        XCTAssertFalse(app.log.contains("event=login "), app.log)
    }

    func testAFormLoginGetsThePageWith429AndTheLimitCanBeTurnedOff() throws {
        let app = try RouteHarness(["--login-failure-limit", "2/60"])
        for _ in 1...2 { XCTAssertEqual(wrong(app, "ada").status, 401) }
        let form = app.request("POST", "/login", headers: ["HTTP_ORIGIN": "http://\(RouteHarness.host)"],
                               body: "user=ada&password=guess&next=%2Fprivate%2F", contentType: "application/x-www-form-urlencoded")
        XCTAssertEqual(form.status, 429)
        XCTAssertTrue(form.text.contains("Too many failed logins for this user"), form.text)
        XCTAssertEqual(form.headers.first { $0.name == "Retry-After" }?.value, "60")

        let open = try RouteHarness(["--login-failure-limit", "0"])
        for _ in 1...30 { XCTAssertEqual(wrong(open, "ada").status, 401) }
        XCTAssertEqual(try open.login("ada").response.status, 200)
    }


    func testTheOptionIsChecked() throws {
        for bad in ["10", "10/", "/60", "0/60", "10/0", "x/60", "10/86401", "1001/60", "-1/60"] {
            XCTAssertThrowsError(try AppConfiguration.parse(arguments: ["--login-failure-limit", bad], environment: [:]), bad) { error in
                XCTAssertTrue("\(error)".contains("--login-failure-limit"), "\(error)")
            }
        }
        guard case .serve(let config) = try AppConfiguration.parse(arguments: ["--login-failure-limit", "5/120"], environment: [:]) else {
            return XCTFail("expected a configuration")
        }
        XCTAssertEqual(config.loginFailureLimit, LoginFailureLimit(count: 5, windowSeconds: 120))
    }
}
