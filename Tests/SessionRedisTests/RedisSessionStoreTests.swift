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

    /// A store with key prefixes of its own, so tests never share keys.
    private func makeStore(indexLifetimeSeconds: Int = 12 * 3600 + 60) throws -> RedisSessionStore {
        let tag = UUID().uuidString.prefix(8)
        return RedisSessionStore(client: try server.client(), keyPrefix: "t\(tag):sid_", userKeyPrefix: "t\(tag):u_",
                                 indexLifetimeSeconds: indexLifetimeSeconds)
    }

    private func contract() throws -> SessionStoreContract<RedisSessionStore> {
        let store = try makeStore()
        let inspector = try server.connection()
        return SessionStoreContract(store: store) { try inspector.send(RedisCommand("EXISTS", store.key(for: $0))).integer == 1 }
    }

    private let timeouts = SessionStoreContract<RedisSessionStore>.timeouts

    private func create(_ store: RedisSessionStore, _ fields: [(name: String, value: String)] = [],
                        timeouts: SessionTimeouts? = nil) throws -> SessionID {
        let id = SessionID.generate()
        XCTAssertEqual(try store.create(id, fields: fields, timeouts: timeouts ?? self.timeouts, limits: SessionLimits()).isCreated, true)
        return id
    }

    private func ttl(_ key: String) throws -> Int64 {
        try XCTUnwrap(server.connection().send(RedisCommand("TTL", key)).integer)
    }

    func testContractCreateThenIncrement() throws { try contract().createThenIncrement() }
    func testContractWritesToAnUnknownIDWriteNothing() throws { try contract().writesToAnUnknownIDWriteNothing() }
    func testContractCreateRefusesAnExistingID() throws { try contract().createRefusesAnExistingID() }
    func testContractLoad() throws { try contract().loadReturnsFieldsWithTimesAndCanCountAVisit() }
    func testContractLoadMany() throws { try contract().loadManyReturnsLiveSessionsInOrder() }
    func testContractUpdate() throws { try contract().updateIsADeltaWithinLimits() }
    func testContractLimitsOnEveryPath() throws { try contract().limitsHoldAfterCreateWithFieldsAndAfterIncrements() }
    func testContractNoResurrection() throws { try contract().writesAfterDestroyDoNotResurrect() }
    func testContractAliasRotation() throws { try contract().aliasRotationPointsAtTheNewIDAndHoldsNoData() }
    func testContractSupersededRotation() throws { try contract().supersededRotationLeadsNowhere() }
    func testContractRotationWithoutGrace() throws { try contract().rotationWithoutGraceEndsTheOldID() }
    func testContractUserIndex() throws { try contract().userIndexHoldsEntriesUntilUnindexedOrRevoked() }
    func testContractHealth() throws { try contract().healthyStorePassesTheHealthCheck() }
    func testContractNonceClaimedOnce() throws { try contract().aNonceIsClaimedOnceWithinItsLifetimeOnTheStoresClock() }
    func testContractLoginAttempts() throws { try contract().loginAttemptsAreCountedAgainstALimitWithinAWindow() }
    func testContractTouchesOnlyWhenDue() throws { try contract().touchesOnlyWhenDue() }
    func testContractCallsAnsweredTogether() throws { try contract().callsAnsweredTogetherAnswerAsAlone() }

    func testSessionIsAHashWithTheIdleTimeoutAsTTL() throws {
        let store = try makeStore()
        let id = try create(store, [("count", "1")], timeouts: SessionTimeouts(idleSeconds: 1800, absoluteSeconds: 43200))
        let inspector = try server.connection()
        XCTAssertEqual(try inspector.send(RedisCommand("TYPE", store.key(for: id))).text, "hash")
        XCTAssertEqual(try inspector.send(RedisCommand("HGET", store.key(for: id), "count")).text, "1")
        XCTAssertTrue((1790...1800).contains(try ttl(store.key(for: id))))
        XCTAssertTrue(store.key(for: id).hasSuffix("sid_" + id.rawValue))
    }

    func testTTLIsTheSmallerOfIdleAndAbsoluteRemainder() throws {
        let store = try makeStore()
        let id = try create(store, [("count", "1")], timeouts: SessionTimeouts(idleSeconds: 1800, absoluteSeconds: 100))
        XCTAssertTrue((95...100).contains(try ttl(store.key(for: id))))
        _ = try store.increment("count", by: 1, in: id, timeouts: SessionTimeouts(idleSeconds: 5000, absoluteSeconds: 100, touchIntervalSeconds: 0))
        let after = try ttl(store.key(for: id))
        XCTAssertTrue((95...100).contains(after), "a request must not extend past the absolute lifetime: TTL \(after)")
    }

    func testIncrementRefreshesTheTTL() throws {
        let store = try makeStore()
        let id = try create(store, [("count", "1")], timeouts: SessionTimeouts(idleSeconds: 100, absoluteSeconds: 43200))
        XCTAssertEqual(try store.increment("count", by: 1, in: id, timeouts: SessionTimeouts(idleSeconds: 5000, touchIntervalSeconds: 0)), .found(2))
        XCTAssertTrue((4990...5000).contains(try ttl(store.key(for: id))))
    }

    /// Within the touch interval a request leaves the TTL and `_s` alone (no HSET, no EXPIRE:
    /// the write a read path no longer makes); the first request after it renews both.
    func testTouchRenewsTheTTLOnlyOnceTheIntervalHasPassed() throws {
        let store = try makeStore()
        let timeouts = SessionTimeouts(idleSeconds: 60, absoluteSeconds: 3600, touchIntervalSeconds: 3)
        let id = try create(store, [("count", "1")], timeouts: timeouts)
        let key = store.key(for: id)
        let inspector = try server.connection()
        let created = try XCTUnwrap(inspector.send(RedisCommand("HGET", key, "_s")).text)
        // Redis counts whole seconds: 1.1 s after the create is less than 3 s after the second
        // it was made in, and 1.1 + 2 s is at least 3 s after it.
        Thread.sleep(forTimeInterval: 1.1)
        XCTAssertEqual(try store.increment("count", by: 1, in: id, timeouts: timeouts), .found(2))
        XCTAssertEqual(try store.load(id, timeouts: timeouts, touch: true, incrementing: nil).isFound, true)
        XCTAssertEqual(try store.update(id, set: [("theme", "dark")], remove: [], timeouts: timeouts, limits: SessionLimits()), .found(.applied))
        XCTAssertEqual(try inspector.send(RedisCommand("HGET", key, "_s")).text, created)
        XCTAssertLessThan(try ttl(key), 60, "the TTL was renewed within the interval")
        Thread.sleep(forTimeInterval: 2)
        XCTAssertEqual(try store.increment("count", by: 1, in: id, timeouts: timeouts), .found(3))
        XCTAssertEqual(try ttl(key), 60)
        XCTAssertNotEqual(try inspector.send(RedisCommand("HGET", key, "_s")).text, created)
    }

    /// A `_s` after Redis's now (a clock stepped back, a key moved to a node whose clock is
    /// behind) or one that is no number does not hold renewals off: the next request renews.
    func testALastTouchInTheFutureOrUnreadableIsRenewed() throws {
        let store = try makeStore()
        let timeouts = SessionTimeouts(idleSeconds: 60, absoluteSeconds: 3600, touchIntervalSeconds: 30)
        let inspector = try server.connection()
        for stored in ["99999999999", "nan", "soon"] {
            let id = try create(store, [("count", "1")], timeouts: timeouts)
            let key = store.key(for: id)
            try inspector.send(RedisCommand("HSET", key, "_s", stored))
            try inspector.send(RedisCommand("EXPIRE", key, "40"))
            XCTAssertEqual(try store.increment("count", by: 1, in: id, timeouts: timeouts), .found(2))
            XCTAssertEqual(try ttl(key), 60, "increment after _s = \(stored)")
            try inspector.send(RedisCommand("HSET", key, "_s", stored))
            try inspector.send(RedisCommand("EXPIRE", key, "40"))
            XCTAssertEqual(try store.load(id, timeouts: timeouts, touch: true, incrementing: nil).isFound, true)
            XCTAssertEqual(try ttl(key), 60, "load after _s = \(stored)")
        }
    }

    func testIdleAndAbsoluteTimeoutsExpireSessions() throws {
        let store = try makeStore()
        let idle = SessionTimeouts(idleSeconds: 1, absoluteSeconds: 60)
        let idleID = try create(store, [("count", "1")], timeouts: idle)
        let absolute = SessionTimeouts(idleSeconds: 60, absoluteSeconds: 2)
        let absoluteID = try create(store, [("count", "1")], timeouts: absolute)
        // Activity every 0.7 s keeps the idle session alive but cannot extend the absolute one.
        for _ in 0..<4 {
            Thread.sleep(forTimeInterval: 0.7)
            _ = try store.increment("count", by: 1, in: absoluteID, timeouts: absolute)
        }
        XCTAssertEqual(try store.load(idleID, timeouts: idle, touch: false, incrementing: nil), .missing, "idle timeout")
        XCTAssertEqual(try store.load(absoluteID, timeouts: absolute, touch: true, incrementing: nil), .missing, "absolute timeout")
        XCTAssertEqual(try server.connection().send(RedisCommand("EXISTS", store.key(for: absoluteID))).integer, 0)
    }

    /// Review finding 10: every key the project writes has a TTL — the generation counter too,
    /// even for a user who does not exist.
    func testUserKeysShareOneSlotAndExpire() throws {
        let store = try makeStore(indexLifetimeSeconds: 500)
        XCTAssertEqual(try store.index(handle: "h", id: SessionID.generate(), of: "ada", generation: 0), 1)
        XCTAssertTrue((490...500).contains(try ttl(store.indexKey("ada"))))
        _ = try store.revokeAll(of: "nobody-at-all")
        XCTAssertTrue((490...500).contains(try ttl(store.generationKey("nobody-at-all"))), "a revocation key without a TTL")
        XCTAssertTrue(try store.indexKey("ada").hasSuffix("{ada}:sessions") && store.generationKey("ada").hasSuffix("{ada}:gen"),
                      "index and generation share the hash tag, so their scripts stay on one cluster slot")
    }

    func testConcurrentIncrementsOnOneSessionAllCount() throws {
        let prefix = "t\(UUID().uuidString.prefix(8)):sid_"
        let configuration = try server.configuration
        let timeouts = self.timeouts
        let id = try create(RedisSessionStore(client: RedisClient(configuration: configuration), keyPrefix: prefix), [("count", "0")])
        let threads = 8, perThread = 200
        let failures = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            // One connection per thread, as in the server.
            let store = RedisSessionStore(client: RedisClient(configuration: configuration), keyPrefix: prefix)
            for _ in 0..<perThread {
                if case .found = (try? store.increment("count", by: 1, in: id, timeouts: timeouts)) ?? .missing {} else { failures.add() }
            }
        }
        XCTAssertEqual(failures.value, 0)
        let final = try RedisSessionStore(client: RedisClient(configuration: configuration), keyPrefix: prefix)
            .increment("count", by: 0, in: id, timeouts: timeouts)
        XCTAssertEqual(final, .found(Int64(threads * perThread)))
    }

    func testConcurrentWritesToDifferentFieldsAllSurviveWithinTheLimit() throws {
        let prefix = "t\(UUID().uuidString.prefix(8)):sid_"
        let configuration = try server.configuration
        let timeouts = self.timeouts
        let id = try create(RedisSessionStore(client: RedisClient(configuration: configuration), keyPrefix: prefix))
        let writers = 8, perWriter = 25, limit = 150
        let applied = LockedCounter(), refused = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: writers) { writer in
            let store = RedisSessionStore(client: RedisClient(configuration: configuration), keyPrefix: prefix)
            for field in 0..<perWriter {
                switch try? store.update(id, set: [("w\(writer)f\(field)", "v")], remove: [], timeouts: timeouts,
                                         limits: SessionLimits(maxAttributes: limit, maxBytes: 100_000)) {
                case .found(.applied): applied.add()
                case .found(.tooLarge): refused.add()
                default: break
                }
            }
        }
        XCTAssertEqual(applied.value, limit, "exactly the limit is admitted under concurrency")
        XCTAssertEqual(refused.value, writers * perWriter - limit)
        let store = RedisSessionStore(client: RedisClient(configuration: configuration), keyPrefix: prefix)
        guard case .found(let record) = try store.load(id, timeouts: timeouts, touch: false, incrementing: nil) else { return XCTFail("gone") }
        XCTAssertEqual(record.attributes.count, limit, "every admitted write survives")
    }

    /// Review finding 7: a script error (here a counter holding text, written behind the store's
    /// back) is the store failing, not the store being unavailable.
    func testScriptErrorsAreFailuresNotOutages() throws {
        let store = try makeStore()
        let id = try create(store, [("count", "1")])
        _ = try server.connection().send(RedisCommand("HSET", store.key(for: id), "count", "abc"))
        XCTAssertThrowsError(try store.increment("count", by: 1, in: id, timeouts: timeouts)) { error in
            guard case .failed = error as? SessionStoreError else { return XCTFail("got \(error)") }
        }
    }

    func testEachSessionOperationIsOneRoundTrip() throws {
        let store = try makeStore()
        let id = try create(store, [("count", "1")])
        let others = try (0..<5).map { _ in try create(store) }
        // Warm up: scripts loaded, connection open.
        _ = try store.increment("count", by: 1, in: id, timeouts: timeouts)
        _ = try store.increment("count", by: 1, in: SessionID.generate(), timeouts: timeouts)
        _ = try store.loadMany([id], timeouts: timeouts)
        try server.resetStatistics()
        for _ in 0..<10 { _ = try store.increment("count", by: 1, in: id, timeouts: timeouts) }
        for _ in 0..<5 { _ = try store.create(SessionID.generate(), fields: [("count", "1")], timeouts: timeouts, limits: SessionLimits()) }
        _ = try store.loadMany(others, timeouts: timeouts)
        let calls = try server.commandCalls()
        XCTAssertEqual(calls["evalsha"], 10 + 5 + others.count, "one EVALSHA per operation (the pipeline sends one per session)")
        XCTAssertNil(calls["eval"])
        let topLevel = Set(calls.keys).subtracting(["evalsha", "exists", "hincrby", "expire", "hset", "hmget", "hgetall", "time",
                                                     "config|resetstat", "config", "info"])
        XCTAssertEqual(topLevel, [], "unexpected commands \(topLevel)")
    }

    func testStoreReportsUnavailableWhenRedisIsDown() throws {
        let store = RedisSessionStore(configuration: RedisConfiguration(topology: .single(.tcp(host: "127.0.0.1", port: FreePort.next()))))
        XCTAssertThrowsError(try store.increment("count", by: 1, in: SessionID.generate(), timeouts: timeouts)) { error in
            guard case .unavailable = error as? SessionStoreError else { return XCTFail("got \(error)") }
        }
        XCTAssertThrowsError(try store.checkHealth())
    }
}

extension CreateOutcome {
    var isCreated: Bool {
        if case .created = self { return true }
        return false
    }
}

extension StoreLookup {
    var isFound: Bool {
        if case .found = self { return true }
        return false
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
    /// A master with `min-replicas-to-write` that has too few replicas refuses writes
    /// (`NOREPLICAS`, nothing run): an outage (503), not a failure (500).
    func testAMasterWithoutItsRequiredReplicasIsAnOutage() throws {
        let lonely = try RedisServerProcess(arguments: ["--min-replicas-to-write", "1"])
        defer { lonely.stop() }
        let store = RedisSessionStore(client: lonely.client(), keyPrefix: "sid_", userKeyPrefix: "sidu_", indexLifetimeSeconds: 3600)
        do throws(SessionStoreError) {
            _ = try store.create(SessionID.generate(), fields: [], timeouts: SessionStoreContract<RedisSessionStore>.timeouts, limits: SessionLimits())
            XCTFail("a write was taken without a replica")
        } catch {
            guard case .unavailable(let why) = error else { return XCTFail("NOREPLICAS is reported as \(error)") }
            XCTAssertTrue(why.contains("NOREPLICAS"), why)
        }
    }

    /// A Redis full at its `maxmemory` with `noeviction` (what README recommends against a flood
    /// of new sessions) refuses writes with OOM: an outage (503, with the cause named), not a
    /// failure (500).
    func testRedisAtItsMemoryLimitIsAnOutageNamedAsSuch() throws {
        let full = try RedisServerProcess(arguments: ["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"])
        defer { full.stop() }
        let store = RedisSessionStore(client: full.client(), keyPrefix: "sid_", userKeyPrefix: "sidu_", indexLifetimeSeconds: 3600)
        let timeouts = SessionStoreContract<RedisSessionStore>.timeouts
        let first = SessionID.generate()
        XCTAssertTrue(try store.create(first, fields: [], timeouts: timeouts, limits: SessionLimits()).isCreated)
        XCTAssertEqual(try store.index(handle: "h1", id: first, of: "ada", generation: 0), 1)
        var refusal: SessionStoreError?
        for _ in 0..<100_000 {
            do throws(SessionStoreError) {
                _ = try store.create(SessionID.generate(), fields: [("note", String(repeating: "x", count: 200))], timeouts: timeouts,
                                     limits: SessionLimits())
            } catch {
                refusal = error
                break
            }
        }
        guard case .unavailable(let why) = try XCTUnwrap(refusal, "Redis never filled up") else {
            return XCTFail("a full Redis is reported as \(String(describing: refusal))")
        }
        XCTAssertTrue(why.contains("maxmemory"), why)
        // Full, Redis still lets a user end every session (a review found revoke-all refused
        // there: a stranger's flood of new sessions kept a stolen one alive).
        let manager = SessionManager(store: store, timeouts: timeouts)
        XCTAssertEqual(try manager.revokeAll(of: "ada"), 1)
        XCTAssertNil(try manager.resolve(first).record)
        XCTAssertEqual(try store.indexedSessions(of: "ada").count, 0)
    }

    func testBenchScriptsAreTheStoreScripts() throws {
        let directory = Paths.repositoryRoot.appendingPathComponent("bench/scripts")
        XCTAssertEqual(try String(contentsOf: directory.appendingPathComponent("increment.lua"), encoding: .utf8),
                       RedisSessionStore.incrementScript.source)
        XCTAssertEqual(try String(contentsOf: directory.appendingPathComponent("create.lua"), encoding: .utf8),
                       RedisSessionStore.createScript.source)
    }
}
