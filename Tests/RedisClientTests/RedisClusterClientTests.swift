import Foundation
import XCTest
import RedisClient
import TestSupport

/// `RedisClient` on a real 3-master + 3-replica cluster shared by this class. Tests that move
/// slots or stop nodes leave the cluster whole again; each test starts by waiting for that.
final class RedisClusterClientTests: XCTestCase {
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

    /// Keys of a fresh hash tag served by `master`.
    private func tag(on master: Int) throws -> String {
        "{\(try cluster.hashTag(servedBy: master))}\(UUID().uuidString.prefix(8))"
    }

    func testCommandsGoStraightToTheOwningMaster() throws {
        let cluster = try cluster
        let client = cluster.client()
        let masters = try cluster.masters()
        XCTAssertEqual(masters.count, 3)
        try cluster.resetStatistics()
        for master in masters {
            let key = try tag(on: master) + ":k"
            XCTAssertEqual(try client.send(RedisCommand("SET", key, "v"), key: key), .status("OK"))
            XCTAssertEqual(try client.send(RedisCommand("GET", key), key: key).text, "v")
            XCTAssertEqual(try cluster.commandCalls(master)["set"], 1, "the SET went to the master serving its slot")
        }
        XCTAssertEqual(client.statistics.moved, 0)
        XCTAssertEqual(client.statistics.asked, 0)
        XCTAssertEqual(client.statistics.slotMapRefreshes, 1, "one CLUSTER SLOTS, at first use")
        XCTAssertNoThrow(try client.checkHealth())
    }

    func testSeedListStartingWithDeadNodesStillFindsTheCluster() throws {
        let cluster = try cluster
        var configuration = cluster.configuration
        configuration.topology = .cluster(seeds: [.tcp(host: "127.0.0.1", port: FreePort.next()), .tcp(host: "127.0.0.1", port: FreePort.next()),
                                                  .tcp(host: "127.0.0.1", port: cluster.ports[4])])
        let client = RedisClient(configuration: configuration)
        let key = try tag(on: try cluster.masters()[1]) + ":k"
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "seed"), key: key), .status("OK"))
        XCTAssertEqual(try client.send(RedisCommand("GET", key), key: key).text, "seed")
    }

    /// A pipeline over keys of one slot while the slot moves: keys already moved are answered
    /// by the target after `ASK` (the source has not got them), new keys are created there, and
    /// once the move is final the old master's `MOVED` is followed and the map updated.
    func testPipelineFollowsAskDuringAMigrationAndMovedAfterIt() throws {
        let cluster = try cluster
        let masters = try cluster.masters()
        let source = masters[0], target = masters[1]
        let prefix = try tag(on: source)
        let keys = (0..<20).map { "\(prefix):\($0)" }
        let client = cluster.client()
        let written = try client.pipeline(keys.map { (RedisCommand("SET", $0, "v-\($0)"), $0) })
        XCTAssertEqual(written, Array(repeating: .status("OK"), count: keys.count))

        let migration = try cluster.beginMigration(slot: HashSlot.of(keys[0]), to: target)
        XCTAssertEqual(try cluster.migrateKeys(migration, batch: 10), 10)
        let fresh = keys.map { $0 + ":new" }
        let replies = try client.pipeline(keys.map { (RedisCommand("GET", $0), $0) } + fresh.map { (RedisCommand("SET", $0, "n"), $0) })
        XCTAssertEqual(replies.prefix(keys.count).map(\.text), keys.map { "v-\($0)" }, "every key read, wherever it is now")
        XCTAssertEqual(Array(replies.suffix(fresh.count)), Array(repeating: .status("OK"), count: fresh.count))
        XCTAssertGreaterThan(client.statistics.asked, 0)
        XCTAssertEqual(client.statistics.moved, 0, "ASK does not change the map")

        try cluster.finishMigration(migration)
        XCTAssertEqual(try cluster.master(ofSlot: migration.slot), target)
        let after = try client.pipeline((keys + fresh).map { (RedisCommand("GET", $0), $0) })
        XCTAssertEqual(after.map(\.text), keys.map { "v-\($0)" } + fresh.map { _ in "n" })
        XCTAssertGreaterThan(client.statistics.moved, 0)
        // The map now sends the slot's keys to the target directly.
        let moved = client.statistics.moved
        for key in keys { XCTAssertEqual(try client.send(RedisCommand("GET", key), key: key).text, "v-\(key)") }
        XCTAssertEqual(client.statistics.moved, moved, "no MOVED once the map is updated")
    }

    /// `WAIT` on the master that took the write: confirmed while its replica is up; while the
    /// replica is frozen, unconfirmed after the timeout and no later; and still unconfirmed for a
    /// client whose first map already shows that master without replicas (the cluster has
    /// replicas, so a missing one is a shortfall, not a reason not to wait).
    func testWaitForReplicasConfirmsOrReportsTheShortfallWithinItsTimeout() throws {
        let cluster = try cluster
        let master = try cluster.masters()[2]
        let key = try tag(on: master) + ":w"
        let client = cluster.client()
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "1"), key: key), .status("OK"))
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 1000), ReplicationOutcome(required: 1, acknowledged: 1))
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 1000), ReplicationOutcome(required: 0, acknowledged: 0),
                       "nothing written since the last call: nothing to wait for")

        let replica = try XCTUnwrap(cluster.replicas(of: master).first)
        cluster.pause(replica)
        defer { cluster.resume(replica) }
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "2"), key: key), .status("OK"))
        let started = Date()
        let outcome = try client.waitForReplicas(nil, timeoutMilliseconds: 300)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(outcome, ReplicationOutcome(required: 1, acknowledged: 0))
        XCTAssertFalse(outcome.isConfirmed)
        XCTAssertGreaterThanOrEqual(elapsed, 0.29)
        XCTAssertLessThan(elapsed, 1.5, "WAIT is bounded by its timeout")

        // Once the cluster marks the replica failed, CLUSTER SLOTS no longer lists it.
        try waitUntil("the frozen replica to leave CLUSTER SLOTS", timeout: 20) {
            try cluster.slotRanges(from: master).filter { $0.master == master }.allSatisfy { $0.replicas.isEmpty }
        }
        let fresh = cluster.client()
        XCTAssertEqual(try fresh.send(RedisCommand("SET", key, "3"), key: key), .status("OK"))
        XCTAssertEqual(try fresh.waitForReplicas(nil, timeoutMilliseconds: 300), ReplicationOutcome(required: 1, acknowledged: 0))
        XCTAssertEqual(try fresh.send(RedisCommand("SET", key, "4"), key: key), .status("OK"))
        XCTAssertEqual(try fresh.waitForReplicas(0, timeoutMilliseconds: 300), ReplicationOutcome(required: 0, acknowledged: 0),
                       "0 replicas asked: no wait")

        cluster.resume(replica)
        try cluster.waitUntilHealthy()
        XCTAssertEqual(try fresh.send(RedisCommand("SET", key, "5"), key: key), .status("OK"))
        XCTAssertEqual(try fresh.waitForReplicas(nil, timeoutMilliseconds: 2000), ReplicationOutcome(required: 1, acknowledged: 1))
    }
}
