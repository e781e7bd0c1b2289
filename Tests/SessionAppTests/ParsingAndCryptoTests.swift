import XCTest
import SessionCore
@testable import SessionApp

final class RequestBodyTests: XCTestCase {
    func testFormDecoding() {
        XCTAssertEqual(FormURLEncoded.parse(Array("user=ada&password=a+b%21%C3%A9&empty=&x".utf8)),
                       ["user": "ada", "password": "a b!é", "empty": "", "x": ""])
        XCTAssertEqual(FormURLEncoded.parse(Array("a=1&a=2".utf8)), ["a": "1"], "the first value wins")
        XCTAssertEqual(FormURLEncoded.parse(Array("bad=%zz&ok=1".utf8)), ["ok": "1"], "malformed escapes are dropped")
        XCTAssertEqual(FormURLEncoded.parse(Array("bad=%C3".utf8)), [:], "invalid UTF-8 is dropped")
    }

    func testFlatJSONObjects() {
        XCTAssertEqual(FlatJSON.parseObject(Array(#"{"user":"ada","n":-1.5e3,"ok":true,"no":false,"x":null}"#.utf8)),
                       ["user": .string("ada"), "n": .number("-1.5e3"), "ok": .bool(true), "no": .bool(false), "x": .null])
        XCTAssertEqual(FlatJSON.parseObject(Array(#" { "a" : "\"\\\/\n\u00e9" } "#.utf8)), ["a": .string("\"\\/\né")])
        XCTAssertEqual(FlatJSON.parseObject(Array("{}".utf8)), [:])
        for bad in ["", "{", "}", "[]", "{\"a\":[1]}", "{\"a\":{}}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1} x", "{a:1}",
                    "{\"a\":\"\u{01}\"}", "{\"a\":tru}", "{\"a\":\"\\ud800\"}", "{\"a\":-}", "{\"a\":\"unterminated}"] {
            XCTAssertNil(FlatJSON.parseObject(Array(bad.utf8)), bad)
        }
    }
}

final class CryptoTests: XCTestCase {
    func testPasswordHashesVerifyAndAreSalted() throws {
        let first = try XCTUnwrap(PasswordHash.make("s3cret", iterations: 1000))
        let second = try XCTUnwrap(PasswordHash.make("s3cret", iterations: 1000))
        XCTAssertNotEqual(first, second, "each hash has its own salt")
        XCTAssertTrue(first.hasPrefix("pbkdf2-sha256$1000$"))
        XCTAssertTrue(PasswordHash.verify("s3cret", against: first))
        XCTAssertFalse(PasswordHash.verify("s3cret!", against: first))
        XCTAssertFalse(PasswordHash.verify("s3cret", against: "plain"))
        XCTAssertFalse(PasswordHash.verify("s3cret", against: "pbkdf2-sha256$5$AAAA$AAAA"), "too few iterations are refused")
    }

    func testPBKDF2MatchesRFC7914Vector() throws {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, dkLen=64 (first 32 bytes here).
        let derived = try XCTUnwrap(SessionCryptoShim.pbkdf2(password: "passwd", salt: "salt", iterations: 1))
        XCTAssertEqual(derived.prefix(8).map { String(format: "%02x", $0) }.joined(), "55ac046e56e3089f")
    }

    func testUsersFileIgnoresCommentsAndChecksUsers() throws {
        let hash = try XCTUnwrap(PasswordHash.make("pw", iterations: 1000))
        let users = UsersFile(text: "# users\n\nada:\(hash)\n  bob:broken\n")
        XCTAssertTrue(users.check(user: "ada", password: "pw"))
        XCTAssertFalse(users.check(user: "ada", password: "wrong"))
        XCTAssertFalse(users.check(user: "bob", password: "broken"))
        XCTAssertFalse(users.check(user: "eve", password: "pw"))
    }

    func testSignedCookiesRoundTripAndRotateKeys() {
        let old = CookieCodec(signingKeys: [Array("old-key-old-key-old-key-old-key-1".utf8)])
        let rotated = CookieCodec(signingKeys: [Array("new-key-new-key-new-key-new-key-2".utf8), Array("old-key-old-key-old-key-old-key-1".utf8)])
        let id = SessionID.generate()
        let signedByOld = old.encode(id)
        XCTAssertEqual(decode(rotated, signedByOld), id, "old cookies keep working after a key rotation")
        XCTAssertEqual(decode(rotated, rotated.encode(id)), id)
        XCTAssertNil(decode(old, rotated.encode(id)), "the new key is unknown to the old configuration")
        XCTAssertNil(decode(rotated, id.rawValue), "unsigned ids are refused when signing")
        var tampered = Array(signedByOld.utf8)
        tampered[5] = tampered[5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        XCTAssertNil(decode(rotated, String(decoding: tampered, as: UTF8.self)))
        XCTAssertEqual(decode(CookieCodec(signingKeys: []), id.rawValue), id)
    }

    private func decode(_ codec: CookieCodec, _ value: String) -> SessionID? {
        var value = value
        return value.withUTF8 { codec.decode($0) }
    }

    func testBase64URLRoundTrip() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            XCTAssertEqual(Base64URLCoding.decode(Base64URLCoding.encode(bytes)), bytes)
        }
        XCTAssertNil(Base64URLCoding.decode("a"))
        XCTAssertNil(Base64URLCoding.decode("ab+/"))
    }
}
