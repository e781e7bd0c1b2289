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

    /// Replies are built as hiredis parses them: arrays that end together, an element after a
    /// nested array, and several replies fed at once come out whole and in order.
    func testArraysClosingTogetherAndRepliesBackToBack() throws {
        XCTAssertEqual(try parse("*1\r\n*1\r\n*1\r\n:5\r\n"), .array([.array([.array([.integer(5)])])]))
        XCTAssertEqual(try parse("*2\r\n*1\r\n:1\r\n:2\r\n"), .array([.array([.integer(1)]), .integer(2)]))
        let reader = try XCTUnwrap(RedisReplyReader())
        try reader.feed(Array("*2\r\n:1\r\n$1\r\nx\r\n-ERR no\r\n*0\r\n+OK\r\n*2\r\n:7".utf8))
        XCTAssertEqual(try reader.next(), .array([.integer(1), .string([120])]))
        XCTAssertEqual(try reader.next()?.serverError?.code, "ERR")
        XCTAssertEqual(try reader.next(), .array([]))
        XCTAssertEqual(try reader.next(), .status("OK"))
        XCTAssertNil(try reader.next(), "half an array is not a reply")
        try reader.feed(Array("\r\n$-1\r\n".utf8))
        XCTAssertEqual(try reader.next(), .array([.integer(7), .null]))
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

final class RedisConfigurationTests: XCTestCase {
    private func parse(_ url: String) throws -> RedisConfiguration { try RedisConfiguration(url: url) }

    func testSingleNodeURLs() throws {
        XCTAssertEqual(try parse("redis://10.0.0.5:6380").topology, .single(.tcp(host: "10.0.0.5", port: 6380)))
        XCTAssertEqual(try parse("redis://localhost").topology, .single(.tcp(host: "localhost", port: 6379)))
        XCTAssertEqual(try parse("redis://[::1]:7000").topology, .single(.tcp(host: "::1", port: 7000)))
        let full = try parse("redis://user:p%40ss:word@h:1/3")
        XCTAssertEqual(full.username, "user")
        XCTAssertEqual(full.password, "p@ss:word", "percent-escapes in the password are decoded")
        XCTAssertEqual(full.database, 3)
        XCTAssertEqual(full.topology, .single(.tcp(host: "h", port: 1)))
        XCTAssertEqual(try parse("redis://:secret@h:2").password, "secret")
        XCTAssertNil(try parse("redis://:secret@h:2").username)
        XCTAssertEqual(try parse("unix:///run/redis.sock").topology, .single(.unix(path: "/run/redis.sock")))
        XCTAssertEqual(try parse("unix:///run/redis.sock?db=4").database, 4)
        XCTAssertNil(try parse("redis://h").tls)
        XCTAssertNotNil(try parse("rediss://h").tls, "rediss is TLS")
        XCTAssertEqual(try parse("rediss://h").tls?.insecure, false, "verification is on by default")
    }

    func testClusterAndSentinelURLs() throws {
        let cluster = try parse("rediss-cluster://app:pw@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002")
        XCTAssertEqual(cluster.topology, .cluster(seeds: [.tcp(host: "10.0.0.1", port: 7000), .tcp(host: "10.0.0.2", port: 7001), .tcp(host: "::1", port: 7002)]))
        XCTAssertEqual(cluster.username, "app")
        XCTAssertNotNil(cluster.tls)
        let sentinel = try parse("redis-sentinel://:pw@s1:26379,s2,s3:26380/mymaster/2")
        XCTAssertEqual(sentinel.topology, .sentinel(sentinels: [.tcp(host: "s1", port: 26379), .tcp(host: "s2", port: 26379), .tcp(host: "s3", port: 26380)],
                                                    masterName: "mymaster"))
        XCTAssertEqual(sentinel.database, 2)
        XCTAssertEqual(sentinel.password, "pw")
    }

    /// A bad URL stops the program at start with a message that names the problem.
    func testBadURLsAreRefusedWithAReason() {
        let cases: [(String, String)] = [
            ("", "no scheme"), ("http://h:1", "unknown scheme"), ("redis://h:0", "bad port"), ("redis://h:70000", "bad port"),
            ("redis://h:x", "bad port"), ("redis://h/-1", "database"), ("redis://h/x", "database"), ("unix://relative", "unix"),
            ("redis://a:1,b:2", "one host"), ("redis-cluster://a:1/2", "database 0"), ("redis-sentinel://s:1", "master name"),
            ("redis-sentinel://s:1/bad name", "master name"), ("redis://:%zz@h", "%-escape"), ("redis-cluster://a:1,,b:2", "empty host"),
            // Found by fuzzing: a host that is no name or address would not even read back
            // from the description the service logs.
            ("redis://a[:b]:6379", "invalid host"), ("redis:// h:1", "invalid host"), ("redis://[a[b]:1", "invalid host"),
            ("redis-cluster://a:1,h\u{0}:2", "invalid host"),
        ]
        for (url, reason) in cases {
            XCTAssertThrowsError(try parse(url), url) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(url): \(error)")
            }
        }
    }

    func testDescriptionHidesThePassword() throws {
        for url in ["redis://:hunter2@h:1", "rediss-cluster://u:hunter2@a:1,b:2", "redis-sentinel://:hunter2@s/m"] {
            XCTAssertFalse(try parse(url).description.contains("hunter2"), url)
        }
    }
}

final class HashSlotTests: XCTestCase {
    func testCRC16AndSlotsMatchRedisCluster() {
        var vector = "123456789"
        XCTAssertEqual(vector.withUTF8 { HashSlot.crc16($0) }, 0x31C3, "CRC-16/XMODEM check value")
        XCTAssertEqual(HashSlot.of("foo"), 12182)
        XCTAssertEqual(HashSlot.of("bar"), 5061)
        XCTAssertEqual(HashSlot.of("{user1000}.following"), HashSlot.of("{user1000}.followers"))
        XCTAssertEqual(HashSlot.of("{user1000}.following"), HashSlot.of("user1000"))
        XCTAssertEqual(HashSlot.of("foo{}{bar}"), HashSlot.of("foo{}{bar}"), "an empty tag hashes the whole key")
        XCTAssertNotEqual(HashSlot.of("foo{}{bar}"), HashSlot.of("bar"))
        XCTAssertEqual(HashSlot.of("foo{{bar}}zap"), HashSlot.of("{bar"))
        XCTAssertEqual(HashSlot.of("sidu_{ada}:sessions"), HashSlot.of("sidu_{ada}:gen"))
    }

    func testSlotMapFromClusterSlotsAndRedirections() throws {
        func node(_ host: String, _ port: Int64) -> RedisReply { .array([.string(Array(host.utf8)), .integer(port), .string(Array("id".utf8))]) }
        let reply = RedisReply.array([
            .array([.integer(0), .integer(5460), node("10.0.0.1", 7000), node("10.0.0.4", 7003)]),
            .array([.integer(5461), .integer(10922), node("", 7001)]),
            .array([.integer(10923), .integer(16383), node("10.0.0.3", 7002), node("10.0.0.5", 7004), node("10.0.0.6", 7005)]),
        ])
        let map = try XCTUnwrap(ClusterSlotMap(clusterSlots: reply, answeredBy: .tcp(host: "10.0.0.2", port: 7001)))
        XCTAssertTrue(map.coversAllSlots)
        XCTAssertEqual(map.owner(of: 0), .tcp(host: "10.0.0.1", port: 7000))
        XCTAssertEqual(map.owner(of: 6000), .tcp(host: "10.0.0.2", port: 7001), "an empty host is the node that answered")
        XCTAssertEqual(map.replicas(of: .tcp(host: "10.0.0.3", port: 7002)), 2)
        XCTAssertEqual(map.replicas(of: .tcp(host: "10.0.0.2", port: 7001)), 0)
        var moved = map
        moved.move(0, to: .tcp(host: "10.0.0.9", port: 7009))
        XCTAssertEqual(moved.owner(of: 0), .tcp(host: "10.0.0.9", port: 7009))
        XCTAssertEqual(moved.owner(of: 1), .tcp(host: "10.0.0.1", port: 7000))
        XCTAssertNil(ClusterSlotMap(clusterSlots: .array([.array([.integer(0), .integer(99999), node("h", 1)])]), answeredBy: .tcp(host: "h", port: 1)))
        XCTAssertEqual(ClusterRedirect(RedisServerError(message: "MOVED 3999 127.0.0.1:6381")),
                       ClusterRedirect(kind: .moved, slot: 3999, address: .tcp(host: "127.0.0.1", port: 6381)))
        XCTAssertEqual(ClusterRedirect(RedisServerError(message: "ASK 3999 [::1]:6381"))?.kind, .ask)
        XCTAssertNil(ClusterRedirect(RedisServerError(message: "ERR MOVED 1 h:1")))
        XCTAssertNil(ClusterRedirect(RedisServerError(message: "MOVED 99999 h:1")))
        XCTAssertEqual(ClusterRedirect(RedisServerError(message: "MOVED 3999 :6381"), answeredBy: .tcp(host: "10.0.0.2", port: 6379)),
                       ClusterRedirect(kind: .moved, slot: 3999, address: .tcp(host: "10.0.0.2", port: 6381)),
                       "an empty host is the answering node's")
        XCTAssertNil(ClusterRedirect(RedisServerError(message: "MOVED 3999 :6381")))
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

/// What of a Redis error may be logged: never what it quotes of the command (a session key).
final class RedisServerErrorTests: XCTestCase {
    func testQuotedArgumentsAndLongQuotedWordsAreLeftOut() {
        let key = "sid_AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHH"
        let unknown = RedisServerError(message: "ERR unknown command 'EVALSHA', with args beginning with: 'f0247e' '1' '\(key)' '1800' ")
        XCTAssertEqual(unknown.loggableMessage, "ERR unknown command 'EVALSHA', with its arguments left out")
        XCTAssertEqual(unknown.message.contains(key), true, "the message itself stays whole for the code that reads it")
        let acl = RedisServerError(message: "NOPERM No permissions to access the '\(key)' key")
        XCTAssertEqual(acl.loggableMessage, "NOPERM No permissions to access the '…' key")
        XCTAssertFalse("\(RedisError.server(acl))".contains(key))
        XCTAssertFalse("\(acl)".contains(key))
        let cut = RedisServerError(message: "ERR oops '\(key)")
        XCTAssertEqual(cut.loggableMessage, "ERR oops '…")
        let plain = RedisServerError(message: "WRONGPASS invalid username-password pair or user is disabled.")
        XCTAssertEqual(plain.loggableMessage, plain.message)
        XCTAssertEqual(RedisServerError(message: "ERR DB index is out of range").loggableMessage, "ERR DB index is out of range")
        // An apostrophe inside a word is no quote: the diagnosis and what follows stay.
        let readOnly = "READONLY You can't write against a read only replica. (from the master at 127.0.0.1:6380)"
        XCTAssertEqual(RedisServerError(message: readOnly).loggableMessage, readOnly)
        let misconf = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."
        XCTAssertEqual(RedisServerError(message: misconf).loggableMessage, misconf)
        XCTAssertEqual(RedisServerError(message: "NOPERM can't touch '\(key)' now").loggableMessage, "NOPERM can't touch '…' now")
    }
}
