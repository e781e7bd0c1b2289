import Foundation
import XCTest
import RedisClient
import SessionCore
@testable import SessionRedis
import TestSupport

/// `RedisSessionStore` over a real 3-master + 3-replica Redis Cluster shared by this class: the
/// store contract unchanged, counts exact while a slot moves, one round trip per request, and a
/// master failover under traffic. Tests that change the cluster leave it whole again.
final class RedisClusterSessionStoreTests: XCTestCase {
    nonisolated(unsafe) private static var shared: RedisClusterProcess?
    nonisolated(unsafe) private static var startError: Error?

    override class func setUp() {
        do { shared = try RedisClusterProcess() } catch { startError = error }
    }

    override class func tearDown() {
        shared?.stop()
        shared = nil
    }

    private var cluster: RedisClusterProcess {
        get throws {
            if let error = Self.startError { throw error }
            return try XCTUnwrap(Self.shared)
        }
    }

    override func setUpWithError() throws {
        try cluster.waitUntilHealthy()
    }

    private let timeouts = SessionStoreContract<RedisSessionStore>.timeouts

    /// A store with key prefixes of its own; `tag` puts every session key in one slot.
    private func makeStore(tag: String? = nil) throws -> RedisSessionStore {
        let unique = "t\(UUID().uuidString.prefix(8))"
        let prefix = tag.map { "\(unique){\($0)}:" } ?? "\(unique):"
        return RedisSessionStore(client: RedisClient(configuration: try cluster.configuration),
                                 keyPrefix: prefix + "sid_", userKeyPrefix: prefix + "u_")
    }

    private func contract() throws -> SessionStoreContract<RedisSessionStore> {
        let store = try makeStore()
        let inspector = try cluster.client()
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
    func testContractTouchesOnlyWhenDue() throws { try contract().touchesOnlyWhenDue() }
    func testContractCallsAnsweredTogether() throws { try contract().callsAnsweredTogetherAnswerAsAlone() }

    func testLoadManySpreadsOverEveryMasterInOneRoundTripEach() throws {
        let cluster = try cluster
        let store = try makeStore()
        let ids = try (0..<30).map { index -> SessionID in
            let id = SessionID.generate()
            XCTAssertEqual(try store.create(id, fields: [("count", String(index))], timeouts: timeouts, limits: SessionLimits()).isCreated, true)
            return id
        }
        _ = try store.loadMany(ids, timeouts: timeouts)
        try cluster.resetStatistics()
        let records = try store.loadMany(ids, timeouts: timeouts)
        XCTAssertEqual(records.map { $0?.visitCount }, (0..<30).map { Int64($0) })
        var total = 0
        for master in try cluster.masters() {
            let calls = try cluster.commandCalls(master)["evalsha"] ?? 0
            XCTAssertGreaterThan(calls, 0, "30 random ids reach every master")
            total += calls
        }
        XCTAssertEqual(total, 30)
    }

    /// The `/count` hot path on a cluster: one `EVALSHA` on the node owning the session, nothing
    /// else anywhere (no `CLUSTER SLOTS`, no `ASKING`, no second try).
    func testIncrementIsOneCommandOnTheOwningNode() throws {
        let cluster = try cluster
        let owner = try cluster.masters()[1]
        let store = try makeStore(tag: try cluster.hashTag(servedBy: owner))
        let id = SessionID.generate()
        XCTAssertEqual(try store.create(id, fields: [("count", "0")], timeouts: timeouts, limits: SessionLimits()).isCreated, true)
        XCTAssertEqual(try store.increment("count", by: 1, in: id, timeouts: timeouts), .found(1))
        let masters = try cluster.masters()
        try cluster.resetStatistics()
        for expected in 2...21 { XCTAssertEqual(try store.increment("count", by: 1, in: id, timeouts: timeouts), .found(Int64(expected))) }
        // What a client can send (scripts' own calls and replication are counted apart).
        let clientCommands: Set<String> = ["evalsha", "eval", "asking", "cluster|slots", "get", "hgetall", "del", "ping", "wait",
                                           "role", "select", "auth", "multi", "exec"]
        for master in masters {
            let calls = try cluster.commandCalls(master).filter { clientCommands.contains($0.key) }
            XCTAssertEqual(calls, master == owner ? ["evalsha": 20] : [:], "commands the client sent to \(master)")
        }
    }

    /// `/count` from several threads (a client each) on sessions of one slot while that slot
    /// moves to another master key by key (`ASK` for moved keys, `EVAL` where the target lacks
    /// the script), then for good (`MOVED`): no request fails and no increment is lost.
    func testIncrementsDuringASlotMigrationAreAllCounted() throws {
        let cluster = try cluster
        let masters = try cluster.masters()
        let source = masters[0], target = masters[2]
        let tag = try cluster.hashTag(servedBy: source)
        let setup = try makeStore(tag: tag)
        let prefix = setup.keyPrefix
        let ids = (0..<12).map { _ in SessionID.generate() }
        for id in ids { XCTAssertEqual(try setup.create(id, fields: [("count", "0")], timeouts: timeouts, limits: SessionLimits()).isCreated, true) }

        let configuration = cluster.configuration
        let timeouts = self.timeouts
        let running = LockedFlag(true)
        let tally = LockedTally(sessions: ids.count)
        let group = DispatchGroup()
        for thread in 0..<4 {
            DispatchQueue.global().async(group: group) {
                let store = RedisSessionStore(client: RedisClient(configuration: configuration), keyPrefix: prefix)
                var index = thread
                while running.value {
                    index = (index + 1) % ids.count
                    do {
                        guard case .found = try store.increment("count", by: 1, in: ids[index], timeouts: timeouts) else {
                            tally.fail("session \(index) not found")
                            continue
                        }
                        tally.count(index)
                    } catch {
                        tally.fail("\(error)")
                    }
                }
                tally.add(store.client.statistics)
            }
        }
        Thread.sleep(forTimeInterval: 0.2)
        let migration = try cluster.beginMigration(slot: HashSlot.of(setup.key(for: ids[0])), to: target)
        while try cluster.migrateKeys(migration, batch: 1) > 0 { Thread.sleep(forTimeInterval: 0.04) }
        Thread.sleep(forTimeInterval: 0.2)
        try cluster.finishMigration(migration)
        Thread.sleep(forTimeInterval: 0.3)
        running.set(false)
        group.wait()

        XCTAssertEqual(tally.failures, [], "no request fails while the slot moves")
        XCTAssertEqual(try cluster.master(ofSlot: migration.slot), target)
        let inspector = cluster.client()
        for (index, id) in ids.enumerated() {
            let key = setup.key(for: id)
            let stored = try inspector.send(RedisCommand("HGET", key, "count"), key: key).text
            XCTAssertEqual(stored, String(tally.counts[index]), "session \(index): every acknowledged increment is counted once")
        }
        XCTAssertGreaterThan(tally.statistics.asked, 0, "requests met ASK during the move")
        XCTAssertGreaterThan(tally.statistics.moved, 0, "requests met MOVED after it")
        XCTAssertGreaterThan(tally.counts.reduce(0, +), 100)
    }

    /// A master killed under `/count` traffic: requests for its slots fail only until the
    /// cluster has promoted its replica, then the same clients carry on there. A session
    /// destroyed and confirmed by `WAIT` just before the kill stays destroyed on the promoted
    /// replica.
    func testMasterKilledUnderTrafficFailsOnlyDuringTheFailoverAndKeepsConfirmedRevocations() throws {
        let cluster = try cluster
        let victim = try cluster.masters()[1]
        let tag = try cluster.hashTag(servedBy: victim)
        let setup = try makeStore(tag: tag)
        let prefix = setup.keyPrefix
        let ids = (0..<6).map { _ in SessionID.generate() }
        for id in ids { XCTAssertEqual(try setup.create(id, fields: [("count", "0")], timeouts: timeouts, limits: SessionLimits()).isCreated, true) }
        let revoked = SessionID.generate()
        XCTAssertEqual(try setup.create(revoked, fields: [("count", "0")], timeouts: timeouts, limits: SessionLimits()).isCreated, true)
        _ = try setup.confirmWrites()
        XCTAssertEqual(try setup.destroy([revoked]), 1)
        XCTAssertEqual(try setup.confirmWrites(), .confirmed, "the replica holds the revocation")

        let configuration = cluster.configuration
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
        cluster.kill(victim)
        let slot = HashSlot.of(setup.key(for: ids[0]))
        let successor = try cluster.waitForFailover(ofSlot: slot, from: victim)
        let promotedAt = Date()
        Thread.sleep(forTimeInterval: 2.5)
        running.set(false)
        group.wait()

        let events = log.events
        XCTAssertTrue(events.filter { $0.time < killedAt }.allSatisfy(\.ok), "no error before the kill")
        let errors = events.filter { !$0.ok }
        XCTAssertFalse(errors.isEmpty, "requests for a dead master's slots fail until the failover")
        // Allowance after the cluster reports the failover: a client notices at its next map
        // refresh (at most every 100 ms) and a connect back-off (at most 1 s).
        let windowEnd = promotedAt.addingTimeInterval(1.5)
        XCTAssertEqual(errors.filter { $0.time > windowEnd }.count, 0, "errors after the failover window")
        let after = events.filter { $0.time > windowEnd }
        XCTAssertGreaterThan(after.count, 100, "traffic continued on the promoted replica with the same clients")
        print("cluster failover: kill → promoted \(String(format: "%.2f", promotedAt.timeIntervalSince(killedAt))) s; errors from "
              + "\(String(format: "%.2f", errors.first!.time.timeIntervalSince(killedAt))) s to "
              + "\(String(format: "%.2f", errors.last!.time.timeIntervalSince(killedAt))) s after the kill (\(errors.count) failed requests)")

        let check = RedisSessionStore(client: RedisClient(configuration: configuration), keyPrefix: prefix)
        XCTAssertEqual(try check.load(revoked, timeouts: timeouts, touch: false, incrementing: nil), .missing,
                       "the revocation confirmed before the kill survives it")
        XCTAssertEqual(try cluster.master(ofSlot: slot), successor)

        try cluster.restart(victim)
        try cluster.waitUntilHealthy()
        XCTAssertEqual(cluster.replicas(of: successor), [victim], "the old master came back as a replica")
    }
}
