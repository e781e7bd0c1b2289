import XCTest
import SessionCore

final class CookieHeaderTests: XCTestCase {
    func testFindsValuesAmongOtherCookies() {
        XCTAssertEqual(CookieHeader.values(named: "sid", in: "a=1; sid=abc; b=2"), ["abc"])
        XCTAssertEqual(CookieHeader.values(named: "sid", in: "sid=abc"), ["abc"])
        XCTAssertEqual(CookieHeader.values(named: "sid", in: " \tsid = abc ;"), ["abc"])
        XCTAssertEqual(CookieHeader.values(named: "sid", in: "sid=\"abc\""), ["abc"])
    }

    func testReturnsEveryValueInOrder() {
        XCTAssertEqual(CookieHeader.values(named: "sid", in: "sid=one; x=1; sid=two"), ["one", "two"])
    }

    func testIgnoresMalformedPairsAndOtherNames() {
        XCTAssertEqual(CookieHeader.values(named: "sid", in: ""), [])
        XCTAssertEqual(CookieHeader.values(named: "sid", in: ";;;"), [])
        XCTAssertEqual(CookieHeader.values(named: "sid", in: "sid; sidx=1; xsid=2; =3"), [])
        XCTAssertEqual(CookieHeader.values(named: "sid", in: "SID=upper"), [], "cookie names are case-sensitive")
        XCTAssertEqual(CookieHeader.values(named: "sid", in: "sid="), [""])
        XCTAssertEqual(CookieHeader.values(named: "sid", in: "sid=a=b"), ["a=b"])
    }
}

final class SetCookieTests: XCTestCase {
    func testDefaultSessionCookieHasTheSafeFlags() {
        let id = SessionID.generate()
        let cookie = SessionConfiguration().cookie(for: id, requestIsHTTPS: false)
        XCTAssertEqual(cookie.headerValue, "sid=\(id.rawValue); Path=/; Max-Age=1800; HttpOnly; SameSite=Lax")
    }

    func testSecureWhenTheRequestCameOverHTTPS() {
        let id = SessionID.generate()
        let cookie = SessionConfiguration().cookie(for: id, requestIsHTTPS: true)
        XCTAssertEqual(cookie.headerValue, "sid=\(id.rawValue); Path=/; Max-Age=1800; Secure; HttpOnly; SameSite=Lax")
    }

    func testSecureAlwaysWhenConfiguredOrWhenSameSiteIsNone() {
        let id = SessionID.generate()
        XCTAssertTrue(SessionConfiguration(securePolicy: .always).cookie(for: id, requestIsHTTPS: false).secure)
        XCTAssertTrue(SessionConfiguration(sameSite: .none).cookie(for: id, requestIsHTTPS: false).secure)
        XCTAssertFalse(SessionConfiguration().cookie(for: id, requestIsHTTPS: false).secure)
    }

    func testBrowserSessionCookieHasNoMaxAgeAndExpiredCookieHasZero() {
        let id = SessionID.generate()
        XCTAssertEqual(SessionConfiguration(persistentCookie: false).cookie(for: id, requestIsHTTPS: false).headerValue,
                       "sid=\(id.rawValue); Path=/; HttpOnly; SameSite=Lax")
        XCTAssertEqual(SessionConfiguration().expiredCookie(requestIsHTTPS: true).headerValue,
                       "sid=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax")
    }

    func testAllAttributes() {
        let cookie = SetCookie(name: "__Host-s", value: "v", path: "/app", domain: "example.com", maxAge: 0,
                               secure: true, httpOnly: true, sameSite: .strict)
        XCTAssertEqual(cookie.headerValue, "__Host-s=v; Path=/app; Domain=example.com; Max-Age=0; Secure; HttpOnly; SameSite=Strict")
        XCTAssertEqual(SetCookie(name: "a", value: "b", path: nil, httpOnly: false, sameSite: nil).headerValue, "a=b")
    }

    func testPresentedIDIsTheFirstWellFormedOne() {
        let id = SessionID.generate()
        let configuration = SessionConfiguration()
        XCTAssertEqual(configuration.presentedSessionID(cookieHeader: "sid=bad; sid=\(id.rawValue)"), id)
        XCTAssertNil(configuration.presentedSessionID(cookieHeader: nil))
        XCTAssertNil(configuration.presentedSessionID(cookieHeader: "sid=\(id.rawValue)x"))
        XCTAssertNil(configuration.presentedSessionID(cookieHeader: "other=\(id.rawValue)"))
    }
}

final class SessionCookieWriterTests: XCTestCase {
    func testWriterMatchesTheTypedCookieForEveryConfiguration() {
        let id = SessionID.generate()
        let configurations = [
            SessionConfiguration(),
            SessionConfiguration(cookieName: "__Host-sid", securePolicy: .always),
            SessionConfiguration(cookieName: "s", cookiePath: "/app", cookieDomain: "example.com", sameSite: .strict, idleTimeoutSeconds: 60),
            SessionConfiguration(sameSite: .none),
            SessionConfiguration(persistentCookie: false),
        ]
        for configuration in configurations {
            let writer = SessionCookieWriter(configuration: configuration)
            for https in [false, true] {
                XCTAssertEqual(writer.headerValue(for: id, requestIsHTTPS: https),
                               configuration.cookie(for: id, requestIsHTTPS: https).headerValue)
            }
        }
    }
}
