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

    /// A seed that refuses the credentials, then one that is down: the refusal is what the
    /// client reports (it kept only the last error, a connect failure, so check-config said
    /// "unreachable" for a password out of step).
    func testASeedRefusingTheCredentialsIsReportedAsSuchNotAsUnreachable() throws {
        let password = "right-\(UUID().uuidString)"
        let guarded = try RedisServerProcess(arguments: ["--requirepass", password],
                                             admin: RedisTestCredentials(username: "default", password: password))
        defer { guarded.stop() }
        var configuration = RedisConfiguration(topology: .cluster(seeds: [.tcp(host: "127.0.0.1", port: guarded.port),
                                                                          .tcp(host: "127.0.0.1", port: FreePort.next())]))
        for credentials in [nil, "not-it"] {
            configuration.password = credentials
            XCTAssertThrowsError(try RedisClient(configuration: configuration).checkHealth()) { error in
                guard case .server(let refusal)? = error as? RedisError else { return XCTFail("\(error)") }
                XCTAssertTrue(refusal.refusesCredentials, "\(refusal)")
            }
        }
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

    /// One client of a process that learns of a new owner (here a `MOVED` after a slot moved;
    /// a failover likewise) makes the others load the map again before their next command: a
    /// worker that was idle meanwhile no longer sends to the old owner (fault review s20: after
    /// a failover, such a worker reached the replaced master, which answered from its stale
    /// copy when it woke from a pause).
    func testOneClientLearningOfANewOwnerRefreshesTheOthers() throws {
        let cluster = try cluster
        let masters = try cluster.masters()
        let source = masters[0], target = masters[2]
        let key = try tag(on: source) + ":generation"
        let first = cluster.client(), second = cluster.client()
        XCTAssertEqual(try first.send(RedisCommand("GET", key), key: key), .null)
        XCTAssertEqual(try second.send(RedisCommand("GET", key), key: key), .null)
        let migration = try cluster.beginMigration(slot: HashSlot.of(key), to: target)
        try cluster.finishMigration(migration)
        usleep(150_000)  // past the clients' 100 ms between map loads
        XCTAssertEqual(try first.send(RedisCommand("SET", key, "1"), key: key), .status("OK"))
        XCTAssertEqual(first.statistics.moved, 1)
        let loaded = second.statistics.slotMapRefreshes
        XCTAssertEqual(try second.send(RedisCommand("GET", key), key: key).text, "1")
        XCTAssertEqual(second.statistics.moved, 0, "the second client had the new map before sending")
        XCTAssertLessThanOrEqual(second.statistics.slotMapRefreshes, loaded + 1)
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

extension RedisClusterClientTests {
    /// A frozen master (SIGSTOP: it accepts connections but answers nothing) under traffic
    /// from one client over keys of every master: requests for its slots fail until its replica
    /// takes over and then succeed there. Requests for the other masters' slots succeed and are
    /// never held up behind it (a map refresh must not ask the frozen node first) — except while
    /// the cluster itself answers `CLUSTERDOWN` (between the failure report and the promotion,
    /// as `cluster-require-full-coverage` asks), which the client retries until its timeout.
    func testFrozenMasterHoldsUpOnlyItsOwnSlots() throws {
        let cluster = try cluster
        let masters = try cluster.masters()
        // The master serving slot 0 comes first in CLUSTER SLOTS, so first in a naive refresh.
        let frozen = try cluster.master(ofSlot: 0)
        let keys = try masters.map { try tag(on: $0) + ":f" }
        let frozenKey = try XCTUnwrap(keys.first { try cluster.master(ofKey: $0) == frozen })
        let client = cluster.client()
        for key in keys { XCTAssertEqual(try client.send(RedisCommand("SET", key, "0"), key: key), .status("OK")) }
        // A client that only answers health checks (as /healthz does) and knew the old map.
        let healthOnly = cluster.client()
        XCTAssertNoThrow(try healthOnly.checkHealth())

        struct Outcome { let at: TimeInterval; let frozenSlot: Bool; let latency: TimeInterval; let result: String }
        var outcomes: [Outcome] = []
        let frozenAt = Date()
        cluster.pause(frozen)
        defer { cluster.resume(frozen) }
        var promotedAt: TimeInterval?
        var successor = 0
        while Date().timeIntervalSince(frozenAt) < 20 {
            for key in keys {
                let started = Date()
                let retries = client.statistics.tryAgains
                var result = "ok"
                do {
                    if let error = try client.send(RedisCommand("INCR", key), key: key).serverError { result = error.code }
                } catch {
                    result = "\(error)"
                }
                // Answered after CLUSTERDOWN retries: the cluster was down, not the client slow.
                if result == "ok" && client.statistics.tryAgains > retries { result = "ok after CLUSTERDOWN" }
                outcomes.append(Outcome(at: started.timeIntervalSince(frozenAt), frozenSlot: key == frozenKey,
                                        latency: Date().timeIntervalSince(started), result: result))
            }
            if promotedAt == nil, let owner = try? cluster.master(ofKey: frozenKey), owner != frozen {
                successor = owner
                promotedAt = Date().timeIntervalSince(frozenAt)
            }
            if let promotedAt, Date().timeIntervalSince(frozenAt) - promotedAt > 2 { break }
        }
        let promoted = try XCTUnwrap(promotedAt, "the replica took over")
        let others = outcomes.filter { !$0.frozenSlot }
        let othersFailed = others.filter { $0.result != "ok" }
        XCTAssertEqual(Set(othersFailed.map(\.result)).subtracting(["CLUSTERDOWN", "ok after CLUSTERDOWN"]), [],
                       "other slots fail only with the cluster")
        let slowOK = others.filter { $0.result == "ok" && $0.latency > 0.3 }
        XCTAssertEqual(slowOK.map { Int($0.latency * 1000) }, [], "requests for other masters' slots are not held up behind the frozen one")
        let frozenFailed = outcomes.filter { $0.frozenSlot && $0.result != "ok" }
        XCTAssertFalse(frozenFailed.isEmpty)
        let lastFailure = outcomes.filter { $0.result != "ok" && $0.result != "ok after CLUSTERDOWN" }.map(\.at).max() ?? 0
        XCTAssertLessThan(lastFailure, promoted + 1.5, "the promoted replica serves the slots")
        XCTAssertNotEqual(try client.send(RedisCommand("INCR", frozenKey), key: frozenKey), .null)
        XCTAssertNoThrow(try healthOnly.checkHealth(), "healthy again once the cluster is, though this client sent nothing else")
        func seconds(_ value: TimeInterval) -> String { String(format: "%.2f", value) }
        print("frozen cluster master: promoted after \(seconds(promoted)) s; own slots failed from \(seconds(frozenFailed.first?.at ?? 0)) "
              + "to \(seconds(frozenFailed.last?.at ?? 0)) s (\(frozenFailed.count) requests); other slots: CLUSTERDOWN from "
              + "\(seconds(othersFailed.first?.at ?? 0)) to \(seconds(othersFailed.last?.at ?? 0)) s (\(othersFailed.count) requests, "
              + "\(othersFailed.filter { $0.result == "CLUSTERDOWN" }.count) failed), "
              + "slowest success \(Int((others.filter { $0.result == "ok" }.map(\.latency).max() ?? 0) * 1000)) ms")

        // Thawed, the old master learns it was replaced and follows its successor.
        cluster.resume(frozen)
        try cluster.waitUntilHealthy()
        XCTAssertEqual(cluster.replicas(of: successor), [frozen])
    }
}

extension RedisClusterClientTests {
    /// A pipeline over two masters that fails half way (the first master drops the client's
    /// connection) must not leave the other master's replies unread on its connection: the
    /// next command there would take them for its own answer.
    func testAPipelineThatFailsHalfWayLeavesNoReplyBehind() throws {
        let cluster = try cluster
        let masters = try cluster.masters()
        let first = try tag(on: masters[0]) + ":p", second = try tag(on: masters[1]) + ":p"
        let admin = cluster.connection(masters[0])
        try admin.checked("PING")
        let client = cluster.client()
        XCTAssertEqual(try client.send(RedisCommand("SET", second, "before"), key: second), .status("OK"))
        XCTAssertEqual(try client.send(RedisCommand("SET", first, "before"), key: first), .status("OK"))

        // Everything below happens well within the connection's idle check period (100 ms), as
        // on a busy worker: no connection is polled before use.
        try admin.checked("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        XCTAssertThrowsError(try client.pipeline([(RedisCommand("SET", first, "x"), first), (RedisCommand("SET", second, "after"), second),
                                                  (RedisCommand("INCR", second + "n"), second + "n")]))
        XCTAssertEqual(try client.send(RedisCommand("GET", second), key: second).text, "after",
                       "the GET gets its own reply, not the SET's left over from the pipeline")
        XCTAssertEqual(try client.send(RedisCommand("GET", second + "n"), key: second + "n").text, "1")
        XCTAssertEqual(try client.send(RedisCommand("GET", first), key: first).text, "before", "the killed connection's SET never ran")
    }
}

extension RedisClusterClientTests {
    /// `pipelineEach` (what a worker's batch uses): a node that drops the connection fails only
    /// the commands sent to it; the other masters' replies stand and nothing is left unread.
    func testPipelineEachFailsOnlyTheFailedNodesCommands() throws {
        let cluster = try cluster
        let masters = try cluster.masters()
        let first = try tag(on: masters[0]) + ":e", second = try tag(on: masters[1]) + ":e", third = try tag(on: masters[2]) + ":e"
        let admin = cluster.connection(masters[0])
        try admin.checked("PING")
        let client = cluster.client()
        for key in [first, second, third] { XCTAssertEqual(try client.send(RedisCommand("SET", key, "0"), key: key), .status("OK")) }
        try admin.checked("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        let results = try client.pipelineEach([(RedisCommand("INCR", first), first), (RedisCommand("INCR", second), second),
                                                (RedisCommand("INCR", third), third), (RedisCommand("INCR", second), second)])
        XCTAssertThrowsError(try results[0].get(), "the dropped node's command fails")
        XCTAssertEqual(results[1...].map { try? $0.get() }, [.integer(1), .integer(1), .integer(2)], "the others' replies stand, in order")
        XCTAssertEqual(try client.send(RedisCommand("GET", second), key: second).text, "2", "each INCR ran once")
        XCTAssertEqual(try client.send(RedisCommand("GET", first), key: first).text, "0", "the killed connection's INCR never ran")
    }
}

extension RedisClusterClientTests {
    /// Writes on every master, every replica frozen: the `WAIT`s go out together, so the
    /// shortfall is known after one timeout, not one per master.
    func testWaitOnSeveralMastersCostsOneTimeout() throws {
        let cluster = try cluster
        let masters = try cluster.masters()
        let client = cluster.client()
        let keys = try masters.map { try tag(on: $0) + ":w" }
        for key in keys { XCTAssertEqual(try client.send(RedisCommand("SET", key, "1"), key: key), .status("OK")) }
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 2000), ReplicationOutcome(required: 1, acknowledged: 1))

        let replicas = masters.flatMap { cluster.replicas(of: $0) }
        XCTAssertEqual(replicas.count, 3)
        for replica in replicas { cluster.pause(replica) }
        defer { for replica in replicas { cluster.resume(replica) } }
        for key in keys { XCTAssertEqual(try client.send(RedisCommand("SET", key, "2"), key: key), .status("OK")) }
        let started = Date()
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 400), ReplicationOutcome(required: 1, acknowledged: 0))
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(elapsed, 0.39)
        XCTAssertLessThan(elapsed, 1.1, "three masters waited on together, not one after another (that takes 1.2 s)")
        XCTAssertEqual(client.statistics.waits, 6)
        for replica in replicas { cluster.resume(replica) }
        // The connections are still in step: the next commands get their own replies.
        for key in keys { XCTAssertEqual(try client.send(RedisCommand("GET", key), key: key).text, "2") }
    }
}
