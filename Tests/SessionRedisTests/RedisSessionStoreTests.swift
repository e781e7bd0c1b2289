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

    private let timeouts = SessionStoreContract.timeouts

    func testContractCreateThenIncrement() throws { try SessionStoreContract.createThenIncrement(makeStore()) }
    func testContractIncrementOfUnknownSessionWritesNothing() throws {
        let store = try makeStore()
        try SessionStoreContract.incrementOfUnknownSessionWritesNothing(store) { try exists(store, $0) }
    }
    func testContractCreateRefusesAnExistingID() throws { try SessionStoreContract.createRefusesAnExistingID(makeStore()) }
    func testContractLoad() throws { try SessionStoreContract.loadReturnsFieldsWithTimes(makeStore()) }
    func testContractUpdate() throws { try SessionStoreContract.updateIsADeltaWithinLimits(makeStore()) }
    func testContractNoResurrection() throws {
        let store = try makeStore()
        try SessionStoreContract.writesAfterDestroyDoNotResurrect(store) { try exists(store, $0) }
    }
    func testContractRotation() throws { try SessionStoreContract.rotationLeavesAnAliasForTheGracePeriod(makeStore()) }
    func testContractRotationWithoutGrace() throws { try SessionStoreContract.rotationWithoutGraceEndsTheOldID(makeStore()) }
    func testContractUsers() throws { try SessionStoreContract.usersIndexAndGenerations(makeStore()) }
    func testContractHealth() throws { try SessionStoreContract.healthyStorePassesTheHealthCheck(makeStore()) }

    func testSessionIsAHashWithTheIdleTimeoutAsTTL() throws {
        let store = try makeStore()
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], timeouts: SessionTimeouts(idleSeconds: 1800, absoluteSeconds: 43200)))
        let inspector = try server.connection()
        XCTAssertEqual(try inspector.send(RedisCommand("TYPE", store.key(for: id))).text, "hash")
        XCTAssertEqual(try inspector.send(RedisCommand("HGET", store.key(for: id), "count")).text, "1")
        let ttl = try XCTUnwrap(inspector.send(RedisCommand("TTL", store.key(for: id))).integer)
        XCTAssertTrue((1790...1800).contains(ttl), "TTL \(ttl)")
        XCTAssertTrue(store.key(for: id).hasSuffix("sid_" + id.rawValue))
    }

    func testTTLIsTheSmallerOfIdleAndAbsoluteRemainder() throws {
        let store = try makeStore()
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], timeouts: SessionTimeouts(idleSeconds: 1800, absoluteSeconds: 100)))
        let ttl = try XCTUnwrap(server.connection().send(RedisCommand("TTL", store.key(for: id))).integer)
        XCTAssertTrue((95...100).contains(ttl), "TTL \(ttl)")
        _ = try store.increment("count", by: 1, in: id, timeouts: SessionTimeouts(idleSeconds: 5000, absoluteSeconds: 100))
        let after = try XCTUnwrap(server.connection().send(RedisCommand("TTL", store.key(for: id))).integer)
        XCTAssertTrue((95...100).contains(after), "a request must not extend past the absolute lifetime: TTL \(after)")
    }

    func testIncrementRefreshesTheTTL() throws {
        let store = try makeStore()
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], timeouts: SessionTimeouts(idleSeconds: 100, absoluteSeconds: 43200)))
        XCTAssertEqual(SessionStoreContract.value(try store.increment("count", by: 1, in: id, timeouts: SessionTimeouts(idleSeconds: 5000))), 2)
        let ttl = try XCTUnwrap(server.connection().send(RedisCommand("TTL", store.key(for: id))).integer)
        XCTAssertTrue((4990...5000).contains(ttl), "TTL \(ttl)")
    }

    func testIdleAndAbsoluteTimeoutsExpireSessions() throws {
        let store = try makeStore()
        let idle = SessionTimeouts(idleSeconds: 1, absoluteSeconds: 60)
        let idleID = SessionID.generate()
        XCTAssertTrue(try store.create(idleID, fields: [("count", "1")], timeouts: idle))
        let absolute = SessionTimeouts(idleSeconds: 60, absoluteSeconds: 2)
        let absoluteID = SessionID.generate()
        XCTAssertTrue(try store.create(absoluteID, fields: [("count", "1")], timeouts: absolute))
        // Activity every 0.7 s keeps the idle session alive but cannot extend the absolute one.
        for _ in 0..<4 {
            Thread.sleep(forTimeInterval: 0.7)
            _ = try store.increment("count", by: 1, in: absoluteID, timeouts: absolute)
        }
        XCTAssertEqual(try store.load(idleID, timeouts: idle, touch: false), .missing, "idle timeout")
        XCTAssertEqual(try store.load(absoluteID, timeouts: absolute, touch: true), .missing, "absolute timeout")
        XCTAssertFalse(try exists(store, absoluteID))
    }

    func testUserIndexExpiresWithTheLongestPossibleSession() throws {
        let store = RedisSessionStore(connection: try server.connection(), keyPrefix: "t\(UUID().uuidString.prefix(8)):sid_",
                                      userKeyPrefix: "t\(UUID().uuidString.prefix(8)):u_", indexLifetimeSeconds: 500)
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [], timeouts: timeouts))
        try store.index(id, handle: "h", user: "ada")
        let ttl = try XCTUnwrap(server.connection().send(RedisCommand("TTL", store.userKeyPrefix + "ada:sessions")).integer)
        XCTAssertTrue((490...500).contains(ttl), "TTL \(ttl)")
    }

    func testConcurrentIncrementsOnOneSessionAllCount() throws {
        let prefix = "t\(UUID().uuidString.prefix(8)):sid_"
        let endpoint = try server.endpoint
        let id = SessionID.generate()
        let timeouts = self.timeouts
        XCTAssertTrue(try RedisSessionStore(connection: RedisConnection(endpoint: endpoint), keyPrefix: prefix)
            .create(id, fields: [("count", "0")], timeouts: timeouts))
        let threads = 8, perThread = 200
        let failures = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            // One connection per thread, as in the server.
            let store = RedisSessionStore(connection: RedisConnection(endpoint: endpoint), keyPrefix: prefix)
            for _ in 0..<perThread {
                if SessionStoreContract.value((try? store.increment("count", by: 1, in: id, timeouts: timeouts)) ?? .missing) == nil { failures.add() }
            }
        }
        XCTAssertEqual(failures.value, 0)
        let final = try RedisSessionStore(connection: RedisConnection(endpoint: endpoint), keyPrefix: prefix)
            .increment("count", by: 0, in: id, timeouts: timeouts)
        XCTAssertEqual(SessionStoreContract.value(final), Int64(threads * perThread))
    }

    func testConcurrentWritesToDifferentFieldsAllSurvive() throws {
        let prefix = "t\(UUID().uuidString.prefix(8)):sid_"
        let endpoint = try server.endpoint
        let id = SessionID.generate()
        let timeouts = self.timeouts
        XCTAssertTrue(try RedisSessionStore(connection: RedisConnection(endpoint: endpoint), keyPrefix: prefix)
            .create(id, fields: [], timeouts: timeouts))
        let writers = 8, perWriter = 25
        let failures = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: writers) { writer in
            let store = RedisSessionStore(connection: RedisConnection(endpoint: endpoint), keyPrefix: prefix)
            for field in 0..<perWriter {
                let outcome = try? store.update(id, set: [("w\(writer)f\(field)", "v")], remove: [], timeouts: timeouts,
                                                limits: SessionLimits(maxAttributes: 1000, maxBytes: 100_000))
                if outcome != .found(.applied) { failures.add() }
            }
        }
        XCTAssertEqual(failures.value, 0)
        let store = RedisSessionStore(connection: RedisConnection(endpoint: endpoint), keyPrefix: prefix)
        guard case .found(let record) = try store.load(id, timeouts: timeouts, touch: false) else { return XCTFail("gone") }
        XCTAssertEqual(record.attributes.count, writers * perWriter, "every concurrent write must survive")
        XCTAssertEqual(record.fields["_n"], String(writers * perWriter), "size accounting stays exact under concurrency")
    }

    func testEachCountOperationIsOneCommandRoundTrip() throws {
        let store = try makeStore()
        let id = SessionID.generate()
        // Warm up: scripts loaded, connection open.
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], timeouts: timeouts))
        _ = try store.increment("count", by: 1, in: id, timeouts: timeouts)
        _ = try store.increment("count", by: 1, in: SessionID.generate(), timeouts: timeouts)
        try server.resetStatistics()
        for _ in 0..<10 { _ = try store.increment("count", by: 1, in: id, timeouts: timeouts) }
        for _ in 0..<5 { _ = try store.create(SessionID.generate(), fields: [("count", "1")], timeouts: timeouts) }
        let calls = try server.commandCalls()
        // Top-level commands: 15 EVALSHA (one per operation); the rest run inside the scripts.
        XCTAssertEqual(calls["evalsha"], 15)
        XCTAssertNil(calls["eval"])
        let topLevel = Set(calls.keys).subtracting(["evalsha", "exists", "hincrby", "expire", "hset", "hmget", "hget", "time",
                                                     "config|resetstat", "config", "info"])
        XCTAssertEqual(topLevel, [], "unexpected commands \(topLevel)")
    }

    func testStoreReportsUnavailableWhenRedisIsDown() throws {
        let store = RedisSessionStore(connection: RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: FreePort.next()))))
        XCTAssertThrowsError(try store.increment("count", by: 1, in: SessionID.generate(), timeouts: timeouts)) { error in
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
