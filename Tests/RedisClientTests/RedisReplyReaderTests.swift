import XCTest
@testable import RedisClient

/// Reply mapping fed through hiredis's own reader, with no server.
final class RedisReplyReaderTests: XCTestCase {
    private func parse(_ resp: String) throws -> RedisReply? {
        let reader = try XCTUnwrap(RedisReplyReader())
        try reader.feed(Array(resp.utf8))
        return try reader.next()
    }

    func testScalarReplies() throws {
        XCTAssertEqual(try parse("+OK\r\n"), .status("OK"))
        XCTAssertEqual(try parse(":42\r\n"), .integer(42))
        XCTAssertEqual(try parse(":-7\r\n"), .integer(-7))
        XCTAssertEqual(try parse("$5\r\nhello\r\n"), .string(Array("hello".utf8)))
        XCTAssertEqual(try parse("$0\r\n\r\n"), .string([]))
        XCTAssertEqual(try parse("$-1\r\n"), .null)
    }

    func testErrorReplyCarriesItsCode() throws {
        let reply = try parse("-NOSCRIPT No matching script. Please use EVAL.\r\n")
        XCTAssertEqual(reply?.serverError?.code, "NOSCRIPT")
        XCTAssertEqual(reply?.serverError?.message, "NOSCRIPT No matching script. Please use EVAL.")
    }

    func testNestedArrays() throws {
        let reply = try parse("*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n*0\r\n")
        XCTAssertEqual(reply, .array([.integer(1), .array([.string([97]), .null]), .array([])]))
        XCTAssertEqual(try parse("*-1\r\n"), .null)
    }

    func testBinarySafeStrings() throws {
        let reader = try XCTUnwrap(RedisReplyReader())
        let payload: [UInt8] = [0, 13, 10, 255, 36]
        try reader.feed(Array("$5\r\n".utf8) + payload + Array("\r\n".utf8))
        XCTAssertEqual(try reader.next(), .string(payload))
    }

    func testPartialInputWaitsForMore() throws {
        let reader = try XCTUnwrap(RedisReplyReader())
        try reader.feed(Array("$10\r\nhello".utf8))
        XCTAssertNil(try reader.next())
        try reader.feed(Array("world\r\n:1\r\n".utf8))
        XCTAssertEqual(try reader.next(), .string(Array("helloworld".utf8)))
        XCTAssertEqual(try reader.next(), .integer(1))
        XCTAssertNil(try reader.next())
    }

    func testProtocolErrorThrows() throws {
        let reader = try XCTUnwrap(RedisReplyReader())
        try reader.feed(Array("?what\r\n".utf8))
        XCTAssertThrowsError(try reader.next())
    }
}

final class RedisEndpointTests: XCTestCase {
    func testParsesURLs() {
        XCTAssertEqual(RedisEndpoint(url: "redis://10.0.0.5:6380")?.address, .tcp(host: "10.0.0.5", port: 6380))
        XCTAssertEqual(RedisEndpoint(url: "redis://localhost")?.address, .tcp(host: "localhost", port: 6379))
        XCTAssertEqual(RedisEndpoint(url: "redis://")?.address, .tcp(host: "127.0.0.1", port: 6379))
        let full = RedisEndpoint(url: "redis://user:p%40ss:word@h:1/3")
        XCTAssertEqual(full?.username, "user")
        XCTAssertEqual(full?.password, "p%40ss:word")
        XCTAssertEqual(full?.database, 3)
        XCTAssertEqual(full?.address, .tcp(host: "h", port: 1))
        XCTAssertEqual(RedisEndpoint(url: "redis://:secret@h:2")?.password, "secret")
        XCTAssertNil(RedisEndpoint(url: "redis://:secret@h:2")?.username)
        XCTAssertEqual(RedisEndpoint(url: "unix:///run/redis.sock")?.address, .unix(path: "/run/redis.sock"))
    }

    func testRejectsBadURLs() {
        for url in ["", "http://h:1", "redis://h:0", "redis://h:70000", "redis://h:x", "redis://h/-1", "redis://h/x", "unix://relative"] {
            XCTAssertNil(RedisEndpoint(url: url), url)
        }
    }

    func testDescriptionHidesThePassword() {
        XCTAssertFalse(RedisEndpoint(url: "redis://:hunter2@h:1")?.description.contains("hunter2") ?? true)
    }
}

final class RedisScriptTests: XCTestCase {
    func testSHA1MatchesKnownVectors() {
        XCTAssertEqual(SHA1.hexDigest([]), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(SHA1.hexDigest(Array("abc".utf8)), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(SHA1.hexDigest(Array(String(repeating: "a", count: 1000).utf8)), "291e9a6c66994949b57ba5e650361e98fc36b1ba")
    }

    func testCommandsCarryKeysThenArguments() {
        let script = RedisScript("return 1")
        let call = RedisScriptCall(script, keyCount: 1) { $0.append("k"); $0.append("a"); $0.append("b") }
        XCTAssertEqual(call.command("EVALSHA", script.sha1).arguments, ["EVALSHA", script.sha1, "1", "k", "a", "b"])
        XCTAssertEqual(RedisScriptCall(script, keyCount: 0) { _ in }.command("EVAL", script.source).arguments, ["EVAL", "return 1", "0"])
    }
}
