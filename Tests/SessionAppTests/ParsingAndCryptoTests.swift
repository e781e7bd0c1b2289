import XCTest
import SessionCore
import SessionCrypto
@testable import SessionApp

final class RequestBodyTests: XCTestCase {
    func testFormDecoding() {
        XCTAssertEqual(FormURLEncoded.parse(Array("user=ada&password=a+b%21%C3%A9&empty=&x".utf8)),
                       ["user": "ada", "password": "a b!é", "empty": "", "x": ""])
        XCTAssertEqual(FormURLEncoded.parse(Array("a=1&a=2".utf8)), ["a": "1"], "the first value wins")
        XCTAssertEqual(FormURLEncoded.parse(Array("bad=%zz&ok=1".utf8)), ["ok": "1"], "malformed escapes are dropped")
        XCTAssertEqual(FormURLEncoded.parse(Array("bad=%C3".utf8)), [:], "invalid UTF-8 is dropped")
    }

    func testQueryValueEncodingLeavesNoHeaderOrParameterBreaks() {
        XCTAssertEqual(FormURLEncoded.encode("/private/a b?x=1&y=%0d%0a\r\n"), "/private/a%20b%3Fx%3D1%26y%3D%250d%250a%0D%0A")
        XCTAssertEqual(FormURLEncoded.encode("/ok/path-1_2.3~"), "/ok/path-1_2.3~")
        XCTAssertEqual(FormURLEncoded.encode("é"), "%C3%A9")
    }

    /// Every markup character is escaped, also when a combining mark follows it (one Swift
    /// Character with it): the page shows client-chosen text (the User-Agent of each session).
    func testHTMLEscapingCoversMarkupCharactersFollowedByCombiningMarks() {
        XCTAssertEqual(HomePage.escape("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;")
        let combined = "\"\u{301}><\u{301}script>&\u{301}'\u{301}"
        let escaped = HomePage.escape(combined)
        for markup in ["\"", "<", ">", "'"] {
            XCTAssertFalse(escaped.unicodeScalars.contains { String($0) == markup }, "\(markup) left in \(escaped)")
        }
        XCTAssertEqual(escaped, "&quot;\u{301}&gt;&lt;\u{301}script&gt;&amp;\u{301}&#39;\u{301}")
    }

    func testFlatJSONObjects() {
        XCTAssertEqual(FlatJSON.parseObject(Array(#"{"user":"ada","n":-1.5e3,"ok":true,"no":false,"x":null}"#.utf8)),
                       ["user": .string("ada"), "n": .number("-1.5e3"), "ok": .bool(true), "no": .bool(false), "x": .null])
        XCTAssertEqual(FlatJSON.parseObject(Array(#" { "a" : "\"\\\/\n\u00e9" } "#.utf8)), ["a": .string("\"\\/\né")])
        XCTAssertEqual(FlatJSON.parseObject(Array("{}".utf8)), [:])
        for bad in ["", "{", "}", "[]", "{\"a\":[1]}", "{\"a\":{}}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1} x", "{a:1}",
                    "{\"a\":\"\u{01}\"}", "{\"a\":tru}", "{\"a\":-}", "{\"a\":\"unterminated}"] {
            XCTAssertNil(FlatJSON.parseObject(Array(bad.utf8)), bad)
        }
    }

    /// Review finding 9: valid surrogate pairs were refused while non-JSON numbers passed.
    func testJSONFollowsRFC8259ForStringsAndNumbers() {
        XCTAssertEqual(FlatJSON.parseObject(Array(#"{"a":"\ud83d\ude00"}"#.utf8)), ["a": .string("😀")])
        XCTAssertEqual(FlatJSON.parseObject(Array(#"{"a":"\uD83D\uDE00x"}"#.utf8)), ["a": .string("😀x")])
        for lone in [#"{"a":"\ud800"}"#, #"{"a":"\udc00"}"#, #"{"a":"\ud83d\u0041"}"#, #"{"a":"\ud83dx"}"#] {
            XCTAssertNil(FlatJSON.parseObject(Array(lone.utf8)), lone)
        }
        for good in ["0", "-0", "12", "1.5", "1e5", "1E+5", "-2.5e-3", "0.0"] {
            XCTAssertEqual(FlatJSON.parseObject(Array("{\"n\":\(good)}".utf8)), ["n": .number(good)], good)
        }
        for bad in ["1.", "00012", "01", ".5", "+1", "1e", "1e+", "--1", "0x10", "1.2.3", "NaN", "Infinity", "-"] {
            XCTAssertNil(FlatJSON.parseObject(Array("{\"n\":\(bad)}".utf8)), bad)
        }
    }

    func testDuplicateNamesAreRefused() {
        XCTAssertNil(FlatJSON.parseObject(Array(#"{"user":"ada","user":"bob"}"#.utf8)))
    }
}

final class CryptoTests: XCTestCase {
    func testPasswordHashesVerifyAndAreSalted() throws {
        let first = try XCTUnwrap(PasswordHash.make(Array("s3cret".utf8), iterations: 10_000))
        let second = try XCTUnwrap(PasswordHash.make(Array("s3cret".utf8), iterations: 10_000))
        XCTAssertNotEqual(first.encoded, second.encoded, "each hash has its own salt")
        XCTAssertTrue(first.encoded.hasPrefix("pbkdf2-sha256$10000$"))
        XCTAssertEqual(PasswordHash(encoded: first.encoded), first)
        XCTAssertTrue(first.verify("s3cret"))
        XCTAssertFalse(first.verify("s3cret!"))
        XCTAssertNil(PasswordHash(encoded: "plain"))
        XCTAssertNil(PasswordHash(encoded: "pbkdf2-sha256$5$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA"), "too few iterations are refused")
        XCTAssertNil(PasswordHash(encoded: "pbkdf2-sha256$100000$AAAA$AAAAAAAAAAAAAAAAAAAAAA"), "a short salt is refused")
    }

    func testPBKDF2MatchesRFC7914Vector() throws {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, dkLen=64 (first 8 bytes here).
        let derived = try XCTUnwrap(SessionCrypto.pbkdf2SHA256(password: Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1))
        XCTAssertEqual(derived.prefix(8).map { String(format: "%02x", $0) }.joined(), "55ac046e56e3089f")
    }

    func testHMACMatchesRFC4231Vector() throws {
        // RFC 4231 test case 2.
        let mac = try XCTUnwrap(SessionCrypto.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
        XCTAssertEqual(mac.map { String(format: "%02x", $0) }.joined(), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    /// Review finding 10: malformed lines were skipped silently (and still counted), a broken
    /// hash answered instantly (telling that the user exists), and a name starting with `-`
    /// could log in but not be revoked from the command line.
    func testUsersFileRefusesBadLinesWithAReasonEach() throws {
        let hash = try XCTUnwrap(PasswordHash.make(Array("pw".utf8), iterations: 10_000)).encoded
        let users = UsersFile(text: "# users\n\nada:\(hash)\r\n  bob:broken\n-carl:\(hash)\nno colon here\nada:\(hash)\n")
        XCTAssertEqual(Array(users.hashes.keys), ["ada"])
        XCTAssertEqual(users.problems.count, 4, "\(users.problems)")
        XCTAssertTrue(users.problems[0].hasPrefix("line 4: user bob"), users.problems[0])
        XCTAssertTrue(users.problems[1].hasPrefix("line 5: invalid user name"), users.problems[1])
        XCTAssertTrue(users.problems[2].hasPrefix("line 6:"), users.problems[2])
        XCTAssertTrue(users.problems[3].hasPrefix("line 7: user ada appears again"), users.problems[3])
        XCTAssertFalse(users.problems.joined().contains(hash), "problems never quote a hash")
        XCTAssertTrue(users.check(user: "ada", password: "pw"))
        // E-mail logins, a + tag included, are user names (new-user review s20).
        XCTAssertEqual(Array(UsersFile(text: "ana+work@example.com:\(hash)\n").hashes.keys), ["ana+work@example.com"])
        XCTAssertFalse(users.check(user: "ada", password: "wrong"))
        XCTAssertFalse(users.check(user: "bob", password: "broken"))
        XCTAssertFalse(users.check(user: "eve", password: "pw"))
    }

    func testUnknownAndBrokenUsersCostAsMuchAsRealOnes() throws {
        let hash = try XCTUnwrap(PasswordHash.make(Array("pw".utf8))).encoded
        let users = UsersFile(text: "ada:\(hash)\nbob:broken\n")
        func time(_ user: String) -> Double {
            let start = monotonicSeconds()
            for _ in 0..<3 { _ = users.check(user: user, password: "guess") }
            return monotonicSeconds() - start
        }
        let real = time("ada"), unknown = time("eve"), broken = time("bob")
        XCTAssertGreaterThan(unknown, real * 0.5, "unknown users answer as slowly as real ones")
        XCTAssertGreaterThan(broken, real * 0.5, "a broken hash answers as slowly as a real one")
    }

    /// With users hashed at different counts (`hash-password --iterations`), every check costs
    /// the file's costliest count: an unknown user's decoy has all of it, a user hashed with
    /// fewer pays the difference on a decoy (attack review s19: a 100 000-iteration user
    /// refused in 50 ms, an unknown name in 300 ms once one user had 600 000), and the user's
    /// own hash decides the answer.
    func testEveryCheckCostsTheCostliestHashOfTheFile() throws {
        let light = try XCTUnwrap(PasswordHash.make(Array("pw".utf8), iterations: 20_000)).encoded
        let heavy = try XCTUnwrap(PasswordHash.make(Array("pw2".utf8), iterations: 60_000)).encoded
        func cost(_ file: UsersFile, _ user: String) -> Int { file.work(for: user).map(\.hash.iterations).reduce(0, +) }
        let single = UsersFile(text: "ada:\(light)\n")
        XCTAssertEqual(single.iterationsPerCheck, 20_000)
        XCTAssertEqual(cost(single, "ada"), 20_000)
        XCTAssertEqual(cost(single, "eve"), 20_000)
        let mixed = UsersFile(text: "ada:\(light)\nbob:\(heavy)\n")
        for user in ["ada", "bob", "eve"] { XCTAssertEqual(cost(mixed, user), 60_000, user) }
        XCTAssertEqual(mixed.work(for: "ada").filter(\.isUsers).count, 1)
        XCTAssertEqual(mixed.work(for: "eve").filter(\.isUsers).count, 0)
        XCTAssertTrue(mixed.check(user: "ada", password: "pw"), "the decoy after the user's hash does not change the answer")
        XCTAssertFalse(mixed.check(user: "ada", password: "pw2"))
        XCTAssertTrue(mixed.check(user: "bob", password: "pw2"))
        XCTAssertFalse(mixed.check(user: "eve", password: "pw"))
        XCTAssertEqual(UsersFile(text: "").iterationsPerCheck, PasswordHash.defaultIterations)
        // A 64-byte hash costs two blocks per iteration (review s19: a user with one answered
        // in 112 ms, an unknown name in 59 ms): counted, and everyone else padded to it.
        let long = try XCTUnwrap(PasswordHash(encoded: "pbkdf2-sha256$20000$AAAAAAAAAAAAAAAAAAAAAA$" + String(repeating: "A", count: 86)))
        XCTAssertEqual(long.hash.count, 64)
        XCTAssertEqual(long.cost, 40_000)
        let withLong = UsersFile(text: "ada:\(light)\ncarl:\(long.encoded)\n")
        func blocks(_ user: String) -> Int { withLong.work(for: user).map(\.hash.cost).reduce(0, +) }
        for user in ["ada", "carl", "eve"] { XCTAssertEqual(blocks(user), 40_000, user) }
        XCTAssertEqual(try AppConfiguration.hashIterations([]), PasswordHash.defaultIterations)
        XCTAssertEqual(try AppConfiguration.hashIterations(["--iterations", "600000"]), 600_000)
        XCTAssertEqual(try AppConfiguration.hashIterations(["--iterations=200000"]), 200_000)
        for wrong in [["--iterations", "10"], ["--iterations"], ["--rounds", "5"], ["--iterations", "x"]] {
            XCTAssertThrowsError(try AppConfiguration.hashIterations(wrong), "\(wrong)")
        }
    }
}
