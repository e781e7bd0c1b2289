import Foundation
import XCTest
import RedisClient
import TestSupport

/// `RedisConnection` against a real redis-server on a free port.
final class RedisConnectionTests: XCTestCase {
    private var redis: RedisServerProcess!

    override func setUpWithError() throws {
        redis = try RedisServerProcess()
    }

    override func tearDown() {
        redis?.stop()
        redis = nil
    }

    func testCommandsAndRepliesRoundTrip() throws {
        let connection = redis.connection()
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
        XCTAssertEqual(try connection.send(RedisCommand("SET", "k", "v")), .status("OK"))
        XCTAssertEqual(try connection.send(RedisCommand("GET", "k")).text, "v")
        XCTAssertEqual(try connection.send(RedisCommand("GET", "missing")), .null)
        XCTAssertEqual(try connection.send(RedisCommand("INCR", "n")), .integer(1))
        XCTAssertEqual(connection.connectionsOpened, 1)
    }

    func testArgumentsAreBinarySafe() throws {
        let connection = redis.connection()
        let payload: [UInt8] = [0, 13, 10, 32, 255, 0]
        var set = RedisCommand("SET")
        set.append(bytes: [0x6B, 0, 0x6B])   // key "k\0k"
        set.append(bytes: payload)
        XCTAssertEqual(try connection.send(set), .status("OK"))
        var get = RedisCommand("GET")
        get.append(bytes: [0x6B, 0, 0x6B])
        XCTAssertEqual(try connection.send(get), .string(payload))
        XCTAssertEqual(try connection.send(RedisCommand("SET", "empty", "")), .status("OK"))
        XCTAssertEqual(try connection.send(RedisCommand("GET", "empty")), .string([]))
    }

    func testPipelineIsOneWriteWithAllReplies() throws {
        let connection = redis.connection()
        let replies = try connection.pipeline([RedisCommand("SET", "a", "1"), RedisCommand("INCR", "a"), RedisCommand("HGET", "a", "x")])
        XCTAssertEqual(replies.count, 3)
        XCTAssertEqual(replies[0], .status("OK"))
        XCTAssertEqual(replies[1], .integer(2))
        XCTAssertEqual(replies[2].serverError?.code, "WRONGTYPE")
        // A server error reply does not break the connection.
        XCTAssertEqual(try connection.send(RedisCommand("GET", "a")).text, "2")
        XCTAssertEqual(connection.connectionsOpened, 1)
    }

    func testEmptyCommandIsRefusedWithoutSending() {
        XCTAssertThrowsError(try redis.connection().send(RedisCommand(arguments: []))) { error in
            XCTAssertEqual(error as? RedisError, .invalidCommand)
        }
    }

    func testScriptReloadsAfterTheServerForgetsIt() throws {
        let connection = redis.connection()
        let script = RedisScript("return redis.call('INCR', KEYS[1])")
        XCTAssertEqual(try connection.run(script, keys: ["s"], arguments: []), .integer(1))
        XCTAssertEqual(try connection.run(script, keys: ["s"], arguments: []), .integer(2))
        XCTAssertEqual(try connection.send(RedisCommand("SCRIPT", "FLUSH")), .status("OK"))
        XCTAssertEqual(try connection.run(script, keys: ["s"], arguments: []), .integer(3))
        XCTAssertEqual(try connection.send(RedisCommand("SCRIPT", "EXISTS", script.sha1)), .array([.integer(1)]))
    }

    func testScriptErrorsAreThrown() throws {
        let script = RedisScript("return redis.error_reply('BOOM nope')")
        XCTAssertThrowsError(try redis.connection().run(script, keys: [], arguments: [])) { error in
            guard case .server(let serverError) = error as? RedisError else { return XCTFail("got \(error)") }
            XCTAssertEqual(serverError.code, "BOOM")
        }
    }

    func testConnectFailureWhenNothingListens() {
        let connection = RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: FreePort.next())))
        XCTAssertThrowsError(try connection.send(RedisCommand("PING"))) { error in
            guard case .connectFailed = error as? RedisError else { return XCTFail("got \(error)") }
        }
        XCTAssertFalse(connection.isConnected)
    }

    func testSlowServerTimesOutAndTheConnectionRecovers() throws {
        var endpoint = redis.endpoint
        endpoint.commandTimeoutMilliseconds = 200
        let connection = RedisConnection(endpoint: endpoint)
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
        let started = Date()
        XCTAssertThrowsError(try connection.send(RedisCommand("DEBUG", "SLEEP", "0.8"))) { error in
            XCTAssertEqual(error as? RedisError, .timedOut)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.7)
        XCTAssertFalse(connection.isConnected, "a context that timed out must not be reused")
        Thread.sleep(forTimeInterval: 0.8)
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
        XCTAssertEqual(connection.connectionsOpened, 2)
    }

    func testRedisRestartIsNoticedBeforeTheNextCommand() throws {
        let connection = redis.connection()
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
        redis.stop()
        XCTAssertThrowsError(try connection.send(RedisCommand("PING")))
        try redis.start()
        // The first command after the restart succeeds: no error surfaces to a caller.
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
    }

    func testServerClosingAnIdleConnectionIsNoticedBeforeUse() throws {
        let connection = redis.connection()
        XCTAssertEqual(try connection.send(RedisCommand("CLIENT", "SETNAME", "victim")), .status("OK"))
        let admin = redis.connection()
        XCTAssertEqual(try admin.send(RedisCommand("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")).integer, 1)
        // Longer than idleCheckNanoseconds: the connection counts as idle and is checked.
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
        XCTAssertEqual(connection.connectionsOpened, 2)
    }

    func testBusyConnectionIsNotPolledButAFailureStillRecovers() throws {
        let connection = redis.connection()
        connection.idleCheckNanoseconds = 60_000_000_000
        XCTAssertEqual(try connection.send(RedisCommand("CLIENT", "SETNAME", "victim")), .status("OK"))
        XCTAssertEqual(try redis.connection().send(RedisCommand("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")).integer, 1)
        Thread.sleep(forTimeInterval: 0.05)
        // Without the idle check the dead connection is used once and fails; the next call reconnects.
        XCTAssertThrowsError(try connection.send(RedisCommand("PING")))
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
    }

    func testAuthAndDatabaseSelection() throws {
        let admin = redis.connection()
        XCTAssertEqual(try admin.send(RedisCommand("CONFIG", "SET", "requirepass", "s3cret")), .status("OK"))
        let endpoint = try RedisConfiguration(url: "redis://:s3cret@127.0.0.1:\(redis.port)/2").endpoint(.tcp(host: "127.0.0.1", port: redis.port))
        let connection = RedisConnection(endpoint: endpoint)
        XCTAssertEqual(try connection.send(RedisCommand("SET", "indb2", "yes")), .status("OK"))
        XCTAssertEqual(try connection.send(RedisCommand("CLIENT", "INFO")).text?.contains("db=2"), true)
        let wrong = RedisConnection(endpoint: try RedisConfiguration(url: "redis://:wrong@127.0.0.1:\(redis.port)").endpoint(.tcp(host: "127.0.0.1", port: redis.port)))
        XCTAssertThrowsError(try wrong.send(RedisCommand("PING"))) { error in
            guard case .server = error as? RedisError else { return XCTFail("got \(error)") }
        }
    }
}
