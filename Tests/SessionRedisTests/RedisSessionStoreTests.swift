import Foundation
import XCTest
import RedisClient
import SessionCore
@testable import SessionRedis
import TestSupport

/// `RedisSessionStore` against a real redis-server started for this class on a free port.
final class RedisSessionStoreTests: XCTestCase {
    nonisolated(unsafe) private static var redis: RedisServerProcess?

    override class func setUp() {
        redis = try? RedisServerProcess()
    }

    override class func tearDown() {
        redis?.stop()
        redis = nil
    }

    private var server: RedisServerProcess {
        get throws { try XCTUnwrap(Self.redis, "redis-server did not start") }
    }

    /// A store with a key prefix of its own, so tests never share keys.
    private func makeStore() throws -> RedisSessionStore {
        RedisSessionStore(connection: try server.connection(), keyPrefix: "t\(UUID().uuidString.prefix(8)):sid_")
    }

    private func exists(_ store: RedisSessionStore, _ id: SessionID) throws -> Bool {
        try server.connection().send(RedisCommand("EXISTS", store.key(for: id))).integer == 1
    }

    func testContractCreateThenIncrement() throws { try SessionStoreContract.createThenIncrement(makeStore()) }
    func testContractIncrementOfUnknownSessionWritesNothing() throws {
        let store = try makeStore()
        try SessionStoreContract.incrementOfUnknownSessionWritesNothing(store) { try exists(store, $0) }
    }
    func testContractCreateRefusesAnExistingID() throws { try SessionStoreContract.createRefusesAnExistingID(makeStore()) }
    func testContractHealth() throws { try SessionStoreContract.healthyStorePassesTheHealthCheck(makeStore()) }

    func testSessionIsAHashWithTheIdleTimeoutAsTTL() throws {
        let store = try makeStore()
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], idleTimeoutSeconds: 1800))
        let inspector = try server.connection()
        XCTAssertEqual(try inspector.send(RedisCommand("TYPE", store.key(for: id))).text, "hash")
        XCTAssertEqual(try inspector.send(RedisCommand("HGET", store.key(for: id), "count")).text, "1")
        let ttl = try XCTUnwrap(inspector.send(RedisCommand("TTL", store.key(for: id))).integer)
        XCTAssertTrue((1790...1800).contains(ttl), "TTL \(ttl)")
        XCTAssertTrue(store.key(for: id).hasSuffix("sid_" + id.rawValue))
    }

    func testIncrementRefreshesTheTTL() throws {
        let store = try makeStore()
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], idleTimeoutSeconds: 100))
        XCTAssertEqual(try store.increment("count", by: 1, in: id, idleTimeoutSeconds: 5000), 2)
        let ttl = try XCTUnwrap(server.connection().send(RedisCommand("TTL", store.key(for: id))).integer)
        XCTAssertTrue((4990...5000).contains(ttl), "TTL \(ttl)")
    }

    func testExpiredSessionIsGone() throws {
        let store = try makeStore()
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], idleTimeoutSeconds: 1))
        Thread.sleep(forTimeInterval: 1.3)
        XCTAssertNil(try store.increment("count", by: 1, in: id, idleTimeoutSeconds: 1))
        XCTAssertFalse(try exists(store, id))
    }

    func testConcurrentIncrementsOnOneSessionAllCount() throws {
        let prefix = "t\(UUID().uuidString.prefix(8)):sid_"
        let endpoint = try server.endpoint
        let id = SessionID.generate()
        XCTAssertTrue(try RedisSessionStore(connection: RedisConnection(endpoint: endpoint), keyPrefix: prefix)
            .create(id, fields: [("count", "0")], idleTimeoutSeconds: 60))
        let threads = 8, perThread = 200
        let failures = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            // One connection per thread, as in the server.
            let store = RedisSessionStore(connection: RedisConnection(endpoint: endpoint), keyPrefix: prefix)
            for _ in 0..<perThread {
                if (try? store.increment("count", by: 1, in: id, idleTimeoutSeconds: 60)) == nil { failures.add() }
            }
        }
        XCTAssertEqual(failures.value, 0)
        let final = try RedisSessionStore(connection: RedisConnection(endpoint: endpoint), keyPrefix: prefix)
            .increment("count", by: 0, in: id, idleTimeoutSeconds: 60)
        XCTAssertEqual(final, Int64(threads * perThread))
    }

    func testEachOperationIsOneCommandRoundTrip() throws {
        let store = try makeStore()
        let id = SessionID.generate()
        // Warm up: scripts loaded, connection open.
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], idleTimeoutSeconds: 60))
        XCTAssertEqual(try store.increment("count", by: 1, in: id, idleTimeoutSeconds: 60), 2)
        XCTAssertNil(try store.increment("count", by: 1, in: SessionID.generate(), idleTimeoutSeconds: 60))
        try server.resetStatistics()
        for _ in 0..<10 { _ = try store.increment("count", by: 1, in: id, idleTimeoutSeconds: 60) }
        for _ in 0..<5 { _ = try store.create(SessionID.generate(), fields: [("count", "1")], idleTimeoutSeconds: 60) }
        let calls = try server.commandCalls()
        // Top-level commands: 15 EVALSHA (one per operation) plus the statistics calls themselves.
        XCTAssertEqual(calls["evalsha"], 15)
        XCTAssertNil(calls["eval"])
        let topLevel = Set(calls.keys).subtracting(["evalsha", "exists", "hincrby", "expire", "hset", "config|resetstat", "config", "info"])
        XCTAssertEqual(topLevel, [], "unexpected commands \(topLevel)")
    }

    func testStoreReportsUnavailableWhenRedisIsDown() throws {
        let store = RedisSessionStore(connection: RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: FreePort.next()))))
        XCTAssertThrowsError(try store.increment("count", by: 1, in: SessionID.generate(), idleTimeoutSeconds: 60)) { error in
            guard case .unavailable = error as? SessionStoreError else { return XCTFail("got \(error)") }
        }
        XCTAssertThrowsError(try store.checkHealth())
    }
}

/// A thread-safe counter for tests.
final class LockedCounter: @unchecked Sendable {
    // @unchecked: `count` is only touched under `lock`.
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// The benchmark's C baseline and redis-benchmark run bench/scripts/*.lua; they must be the
/// scripts the store really sends, or the comparison is void.
final class BenchmarkScriptsTests: XCTestCase {
    func testBenchScriptsAreTheStoreScripts() throws {
        let directory = Paths.repositoryRoot.appendingPathComponent("bench/scripts")
        XCTAssertEqual(try String(contentsOf: directory.appendingPathComponent("increment.lua"), encoding: .utf8),
                       RedisSessionStore.incrementScript.source)
        XCTAssertEqual(try String(contentsOf: directory.appendingPathComponent("create.lua"), encoding: .utf8),
                       RedisSessionStore.createScript.source)
    }
}
