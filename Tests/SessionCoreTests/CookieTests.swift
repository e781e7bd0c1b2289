import XCTest
import SessionCore
import SessionCrypto

extension CookieHeader {
    /// Every value sent under `name`, as text (test helper over the byte scanner).
    static func values(named name: String, in header: String) -> [String] {
        var result: [String] = []
        var header = header
        header.withUTF8 { bytes in
            forEachValue(named: name, inUTF8: bytes) { value in
                result.append(String(decoding: value, as: UTF8.self))
                return true
            }
        }
        return result
    }
}

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
        XCTAssertEqual(cookie.headerValue, "sid=\(id.rawValue); Path=/; Max-Age=43200; HttpOnly; SameSite=Lax")
    }

    func testSecureWhenTheRequestCameOverHTTPS() {
        let id = SessionID.generate()
        let cookie = SessionConfiguration().cookie(for: id, requestIsHTTPS: true)
        XCTAssertEqual(cookie.headerValue, "sid=\(id.rawValue); Path=/; Max-Age=43200; Secure; HttpOnly; SameSite=Lax")
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

    func testHostAndSecurePrefixesAreCheckedCaseInsensitively() {
        // Review finding 8: browsers match the prefixes case-insensitively and would drop
        // such a cookie without Secure.
        for name in ["__Host-sid", "__host-sid", "__HOST-sid", "__hOsT-sid"] {
            XCTAssertNotNil(SessionConfiguration(cookieName: name).prefixViolation, name)
            XCTAssertNotNil(SessionConfiguration(cookieName: name, cookiePath: "/app", securePolicy: .always).prefixViolation, name)
            XCTAssertNotNil(SessionConfiguration(cookieName: name, cookieDomain: "example.com", securePolicy: .always).prefixViolation, name)
            XCTAssertNil(SessionConfiguration(cookieName: name, securePolicy: .always).prefixViolation, name)
        }
        for name in ["__Secure-sid", "__secure-sid", "__SECURE-sid"] {
            XCTAssertNotNil(SessionConfiguration(cookieName: name).prefixViolation, name)
            XCTAssertNil(SessionConfiguration(cookieName: name, cookieDomain: "example.com", securePolicy: .always).prefixViolation, name)
        }
        XCTAssertNil(SessionConfiguration(cookieName: "sid").prefixViolation)
    }
}

final class SessionCookieCodecTests: XCTestCase {
    private let keyA: [UInt8] = Array("Yk3vQ9pLx2RmT7wZs4NcJ8bHd6FgA1eU".utf8)
    private let keyB: [UInt8] = Array("p0Oi9Uy8Tr7Ee6Ww5Qq4Aa3Ss2Dd1Ff0Gg".utf8)

    private func signed(_ keys: [[UInt8]]) throws -> SessionCookieCodec {
        SessionCookieCodec(configuration: SessionConfiguration(), signer: try XCTUnwrap(HMACSessionIDSigner(keys: keys)))
    }

    func testPresentedIDIsTheFirstWellFormedOne() {
        let id = SessionID.generate()
        let codec = SessionCookieCodec(configuration: SessionConfiguration())
        XCTAssertEqual(codec.presentedID(cookieHeader: "sid=bad; sid=\(id.rawValue)"), id)
        XCTAssertNil(codec.presentedID(cookieHeader: ""))
        XCTAssertNil(codec.presentedID(cookieHeader: "sid=\(id.rawValue)x"))
        XCTAssertNil(codec.presentedID(cookieHeader: "other=\(id.rawValue)"))
    }

    func testHeaderMatchesTheTypedCookieForEveryConfiguration() throws {
        let id = SessionID.generate()
        let configurations = [
            SessionConfiguration(),
            SessionConfiguration(cookieName: "__Host-sid", securePolicy: .always),
            SessionConfiguration(cookieName: "s", cookiePath: "/app", cookieDomain: "example.com", sameSite: .strict, maxAgeSeconds: 60),
            SessionConfiguration(sameSite: .none),
            SessionConfiguration(persistentCookie: false),
        ]
        for configuration in configurations {
            let codec = SessionCookieCodec(configuration: configuration)
            for https in [false, true] {
                XCTAssertEqual(try codec.setCookieHeader(for: id, requestIsHTTPS: https),
                               configuration.cookie(for: id, requestIsHTTPS: https).headerValue)
            }
        }
    }

    func testSignedCookiesRoundTripAndKeysRotate() throws {
        let old = try signed([keyA])
        let rotated = try signed([keyB, keyA])
        let id = SessionID.generate()
        let signedByOld = try old.value(for: id)
        XCTAssertEqual(signedByOld.count, 32 + 1 + 43)
        XCTAssertEqual(rotated.presentedID(cookieHeader: "sid=" + signedByOld), id, "old cookies keep working after a key rotation")
        XCTAssertEqual(rotated.presentedID(cookieHeader: "sid=" + (try rotated.value(for: id))), id)
        XCTAssertNil(old.presentedID(cookieHeader: "sid=" + (try rotated.value(for: id))), "the new key is unknown to the old configuration")
        XCTAssertNil(rotated.presentedID(cookieHeader: "sid=" + id.rawValue), "unsigned ids are refused when signing")
        var tampered = Array(signedByOld.utf8)
        tampered[5] = tampered[5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        XCTAssertNil(rotated.presentedID(cookieHeader: "sid=" + String(decoding: tampered, as: UTF8.self)))
        XCTAssertTrue(try rotated.setCookieHeader(for: id, requestIsHTTPS: false).hasPrefix("sid=\(id.rawValue)."))
    }

    /// Review finding 10: the last character of a 32-byte signature carries 2 unused bits, so
    /// four spellings decoded alike; only the canonical one is accepted now.
    func testOnlyTheCanonicalSpellingOfASignatureIsAccepted() throws {
        let codec = try signed([keyA])
        let id = SessionID.generate()
        let value = try codec.value(for: id)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let last = try XCTUnwrap(alphabet.firstIndex(of: try XCTUnwrap(value.last)))
        var accepted = 0
        for low in 0..<4 {
            let spelling = String(value.dropLast()) + String(alphabet[(last & ~3) | low])
            if codec.presentedID(cookieHeader: "sid=" + spelling) != nil { accepted += 1 }
        }
        XCTAssertEqual(accepted, 1)
    }

    /// Review finding 9: a signer that cannot compute a signature must never yield a cookie,
    /// nor accept one.
    func testASignerThatFailsFailsClosed() {
        struct BrokenSigner: SessionIDSigner {
            var signatureLength: Int { 32 }
            func signature(of id: SessionID) -> [UInt8]? { nil }
            func isValid(_ signature: [UInt8], for id: SessionID) -> Bool { false }
        }
        let codec = SessionCookieCodec(configuration: SessionConfiguration(), signer: BrokenSigner())
        let id = SessionID.generate()
        XCTAssertThrowsError(try codec.setCookieHeader(for: id, requestIsHTTPS: false))
        XCTAssertNil(codec.presentedID(cookieHeader: "sid=\(id.rawValue).\(String(repeating: "A", count: 43))"))
    }
}
