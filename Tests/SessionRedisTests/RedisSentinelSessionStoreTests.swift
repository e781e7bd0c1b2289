import Foundation
import XCTest
import RedisClient
import SessionCore
@testable import SessionRedis
import TestSupport

/// `RedisSessionStore` over a real master + replica watched by three Sentinels, shared by this
/// class: the store contract unchanged, and the master killed under traffic.
final class RedisSentinelSessionStoreTests: XCTestCase {
    nonisolated(unsafe) private static var shared: RedisSentinelSetup?
    nonisolated(unsafe) private static var startError: Error?

    override class func setUp() {
        do { shared = try RedisSentinelSetup() } catch { startError = error }
    }

    override class func tearDown() {
        shared?.stop()
        shared = nil
    }

    private var setup: RedisSentinelSetup {
        get throws {
            if let error = Self.startError { throw error }
            return try XCTUnwrap(Self.shared)
        }
    }

    override func setUpWithError() throws {
        try setup.waitUntilHealthy()
    }

    private let timeouts = SessionStoreContract<RedisSessionStore>.timeouts

    private func makeStore() throws -> RedisSessionStore {
        let prefix = "t\(UUID().uuidString.prefix(8)):"
        return RedisSessionStore(client: try setup.client(), keyPrefix: prefix + "sid_", userKeyPrefix: prefix + "u_")
    }

    private func contract() throws -> SessionStoreContract<RedisSessionStore> {
        let store = try makeStore()
        let inspector = try setup.client()
        return SessionStoreContract(store: store) { id in
            let key = store.key(for: id)
            return try inspector.send(RedisCommand("EXISTS", key), key: key).integer == 1
        }
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

    func testSecurityWritesAreConfirmedByTheReplica() throws {
        let store = try makeStore()
        let id = SessionID.generate()
        XCTAssertEqual(try store.create(id, fields: [("count", "1")], timeouts: timeouts, limits: SessionLimits()).isCreated, true)
        XCTAssertEqual(try store.destroy([id]), 1)
        XCTAssertEqual(try store.confirmWrites(), .confirmed)
    }

    /// The `/count` hot path through Sentinel: one `EVALSHA` per request on the master, and the
    /// Sentinels asked at most once a second whether it is still the master.
    func testIncrementIsOneCommandOnTheMaster() throws {
        let setup = try setup
        let master = try setup.currentMaster()
        let store = try makeStore()
        let id = SessionID.generate()
        XCTAssertEqual(try store.create(id, fields: [("count", "0")], timeouts: timeouts, limits: SessionLimits()).isCreated, true)
        XCTAssertEqual(try store.increment("count", by: 0, in: id, timeouts: timeouts), .found(0), "the script is loaded")
        let admin = setup.connection(master)
        try admin.checked("CONFIG", "RESETSTAT")
        let queriesBefore = store.client.statistics.sentinelQueries
        let started = Date()
        var requests = 0
        while Date().timeIntervalSince(started) < 2.2 {
            requests += 1
            XCTAssertEqual(try store.increment("count", by: 1, in: id, timeouts: timeouts), .found(Int64(requests)))
            usleep(5000)
        }
        let seconds = Date().timeIntervalSince(started)
        let calls = try admin.commandCalls()
        XCTAssertEqual(calls["evalsha"], requests)
        // (The Sentinels' own PING, INFO and PUBLISH reach the master too.)
        XCTAssertEqual(Set(calls.keys).intersection(["eval", "role", "select", "wait", "get", "hgetall"]), [])
        // (Sentinels keep no command statistics; the client counts what it sends them.)
        let asked = store.client.statistics.sentinelQueries - queriesBefore
        XCTAssertTrue((1...Int(seconds) + 1).contains(asked), "the Sentinels are asked about once a second (\(asked) times in \(seconds) s)")
    }

    /// The master killed under `/count` traffic from three workers (a store each): requests fail
    /// only until the Sentinels have promoted the replica, then the same stores carry on there.
    /// A session destroyed and confirmed by `WAIT` just before the kill stays destroyed. Security
    /// writes made while the new master has no replica are reported unconfirmed, not skipped.
    func testMasterKilledUnderTrafficFailsOnlyDuringTheFailoverAndKeepsConfirmedRevocations() throws {
        let setup = try setup
        let setupStore = try makeStore()
        let prefix = setupStore.keyPrefix
        let ids = (0..<6).map { _ in SessionID.generate() }
        for id in ids { XCTAssertEqual(try setupStore.create(id, fields: [("count", "0")], timeouts: timeouts, limits: SessionLimits()).isCreated, true) }
        let revoked = SessionID.generate()
        XCTAssertEqual(try setupStore.create(revoked, fields: [("count", "0")], timeouts: timeouts, limits: SessionLimits()).isCreated, true)
        _ = try setupStore.confirmWrites()
        XCTAssertEqual(try setupStore.destroy([revoked]), 1)
        XCTAssertEqual(try setupStore.confirmWrites(), .confirmed, "the replica holds the revocation")

        let configuration = setup.configuration
        let timeouts = self.timeouts
        let running = LockedFlag(true)
        let log = LockedEventLog()
        let group = DispatchGroup()
        for thread in 0..<3 {
            DispatchQueue.global().async(group: group) {
                let store = RedisSessionStore(client: RedisClient(configuration: configuration), keyPrefix: prefix)
                var index = thread
                while running.value {
                    index = (index + 1) % ids.count
                    let ok: Bool
                    if case .found = (try? store.increment("count", by: 1, in: ids[index], timeouts: timeouts)) ?? .missing { ok = true } else { ok = false }
                    log.record(ok)
                    usleep(2000)
                }
            }
        }
        Thread.sleep(forTimeInterval: 0.5)
        let killedAt = Date()
        let old = try setup.killMaster()
        let promoted = try setup.waitForPromotion(from: old)
        let promotedAt = Date()
        Thread.sleep(forTimeInterval: 2.5)
        running.set(false)
        group.wait()

        let events = log.events
        XCTAssertTrue(events.filter { $0.time < killedAt }.allSatisfy(\.ok), "no error before the kill")
        let errors = events.filter { !$0.ok }
        XCTAssertFalse(errors.isEmpty, "requests fail while there is no master")
        // Allowance after the Sentinels name the new master: a connect back-off (at most 1 s).
        let windowEnd = promotedAt.addingTimeInterval(1.5)
        XCTAssertEqual(errors.filter { $0.time > windowEnd }.count, 0, "errors after the failover window")
        XCTAssertGreaterThan(events.filter { $0.time > windowEnd }.count, 100, "traffic continued on the promoted replica with the same stores")
        print("sentinel failover: kill → promoted \(String(format: "%.2f", promotedAt.timeIntervalSince(killedAt))) s; errors from "
              + "\(String(format: "%.2f", (errors.first?.time ?? killedAt).timeIntervalSince(killedAt))) s to "
              + "\(String(format: "%.2f", (errors.last?.time ?? killedAt).timeIntervalSince(killedAt))) s after the kill "
              + "(\(errors.count) failed requests)")

        let check = RedisSessionStore(client: RedisClient(configuration: configuration), keyPrefix: prefix)
        XCTAssertEqual(try check.load(revoked, timeouts: timeouts, touch: false, incrementing: nil), .missing,
                       "the revocation confirmed before the kill survives it")
        XCTAssertEqual(try check.destroy([ids[0]]), 1)
        XCTAssertEqual(try check.confirmWrites(), .unconfirmed(required: 1, acknowledged: 0),
                       "the new master has no replica yet: the revocation stands on it alone, and says so")

        try setup.restart(old)
        try setup.waitUntilHealthy()
        XCTAssertEqual(try setup.currentMaster(), promoted)
        XCTAssertEqual(try check.destroy([ids[1]]), 1)
        XCTAssertEqual(try check.confirmWrites(), .confirmed, "the old master came back as a replica")
    }
}
