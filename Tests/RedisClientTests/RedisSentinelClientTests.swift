import Foundation
import XCTest
import RedisClient
import TestSupport

/// `RedisClient` on a real master + replica watched by three Sentinels, shared by this class.
/// Tests that move the master or stop a Sentinel leave the deployment whole again; each test
/// starts by waiting for that.
final class RedisSentinelClientTests: XCTestCase {
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

    private func key(_ name: String) -> String { "t\(UUID().uuidString.prefix(8)):\(name)" }

    func testCommandsGoToTheMasterTheSentinelsName() throws {
        let setup = try setup
        let master = try setup.currentMaster()
        let client = setup.client()
        let key = key("k")
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "v"), key: key), .status("OK"))
        XCTAssertEqual(try setup.connection(master).checked("GET", key).text, "v", "written on the master")
        XCTAssertEqual(try client.pipeline([(RedisCommand("GET", key), key), (RedisCommand("INCR", key + "n"), key + "n")]),
                       [.string(Array("v".utf8)), .integer(1)])
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 2000), ReplicationOutcome(required: 1, acknowledged: 1))
        XCTAssertNoThrow(try client.checkHealth())
        XCTAssertEqual(client.statistics.masterResolutions, 1, "resolved once, then the connection is reused")
    }

    /// `WAIT` on the master: confirmed while the replica is up; unconfirmed, after the timeout
    /// and no later, while it is frozen.
    func testWaitForReplicasConfirmsOrReportsAFrozenReplicaWithinItsTimeout() throws {
        let setup = try setup
        let master = try setup.currentMaster()
        let replica = try XCTUnwrap(setup.liveServers.first { $0 != master })
        let client = setup.client()
        let key = key("w")
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "1"), key: key), .status("OK"))
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 2000), ReplicationOutcome(required: 1, acknowledged: 1))
        setup.pause(replica)
        defer { setup.resume(replica) }
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "2"), key: key), .status("OK"))
        let started = Date()
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 300), ReplicationOutcome(required: 1, acknowledged: 0))
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(elapsed, 0.29)
        XCTAssertLessThan(elapsed, 1.5, "WAIT is bounded by its timeout")
        setup.resume(replica)
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "3"), key: key), .status("OK"))
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 5000), ReplicationOutcome(required: 1, acknowledged: 1))
    }

    /// The Sentinel list may start with a dead or a frozen Sentinel: the next one answers, and
    /// once one has answered it is asked first, so a re-resolution (after the master connection
    /// was lost) does not wait on the frozen one again.
    func testADeadOrFrozenFirstSentinelDoesNotHoldUpResolution() throws {
        let setup = try setup
        var configuration = setup.configuration
        let live = setup.sentinelPorts.map { RedisAddress.tcp(host: "127.0.0.1", port: $0) }
        configuration.topology = .sentinel(sentinels: [.tcp(host: "127.0.0.1", port: FreePort.next())] + live, masterName: setup.masterName)
        let key = key("s")
        let dead = RedisClient(configuration: configuration)
        var started = Date()
        XCTAssertEqual(try dead.send(RedisCommand("SET", key, "1"), key: key), .status("OK"))
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.3, "a refused Sentinel costs nothing")

        let frozen = setup.sentinelPorts[0]
        setup.pause(frozen)
        defer { setup.resume(frozen) }
        let client = setup.client()
        started = Date()
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "2"), key: key), .status("OK"))
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.5, "a frozen Sentinel costs one command timeout at most")

        // The master drops the client's connection: the next command resolves the master again.
        try setup.connection(try setup.currentMaster()).checked("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        Thread.sleep(forTimeInterval: 0.2)
        started = Date()
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "3"), key: key), .status("OK"))
        let again = Date().timeIntervalSince(started)
        XCTAssertEqual(client.statistics.masterResolutions, 2, "a new master connection is a new resolution")
        XCTAssertLessThan(again, 0.3, "the Sentinel that answered last is asked first")
    }

    /// The once-a-second check of the master asks one Sentinel: when every Sentinel the client
    /// knows stops answering (frozen), a request pays at most one command timeout for it, the
    /// master in use stays in use, and nothing fails.
    func testUnresponsiveSentinelsCostTheMasterCheckOneTimeoutAtMost() throws {
        let setup = try setup
        // Two more real Sentinels, watching nothing of this deployment, frozen from the start.
        let folder = try Paths.temporaryDirectory("idle-sentinels")
        defer { try? FileManager.default.removeItem(at: folder) }
        var idle: [(port: Int, process: ManagedProcess)] = []
        defer { for sentinel in idle { sentinel.process.stop() } }
        for index in 0..<2 {
            let port = FreePort.next()
            let file = folder.appendingPathComponent("sentinel-\(index).conf")
            try "port \(port)\nbind 127.0.0.1\ndir \(folder.path)\nsentinel monitor elsewhere 127.0.0.1 1 2\n".write(to: file, atomically: true, encoding: .utf8)
            let process = try ManagedProcess(name: "redis-sentinel:\(port)", executable: Paths.tool("redis-sentinel"), arguments: [file.path])
            XCTAssertTrue(FreePort.waitUntilListening(port))
            process.pause()
            idle.append((port, process))
        }
        let real = setup.sentinelPorts[0]
        var configuration = setup.configuration
        configuration.topology = .sentinel(sentinels: ([real] + idle.map(\.port)).map { .tcp(host: "127.0.0.1", port: $0) },
                                           masterName: setup.masterName)
        let client = RedisClient(configuration: configuration)
        let key = key("u")
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "0"), key: key), .status("OK"))

        // Frozen for less than Sentinel's 2 s tilt threshold, so it comes back without side effects.
        setup.pause(real)
        defer { setup.resume(real) }
        var worst: TimeInterval = 0
        var failures: [String] = []
        let started = Date()
        // Requests start for 1.2 s only: the last may wait one 0.5 s timeout, and the Sentinel
        // must be resumed well before 2 s (a longer freeze puts it in TILT for 30 s, in the
        // deployment the class's later tests share).
        while Date().timeIntervalSince(started) < 1.2 {
            let begun = Date()
            do {
                _ = try client.send(RedisCommand("INCR", key), key: key)
            } catch {
                failures.append("\(error)")
            }
            worst = max(worst, Date().timeIntervalSince(begun))
            usleep(5000)
        }
        setup.resume(real)
        XCTAssertEqual(failures, [])
        XCTAssertGreaterThan(worst, 0.4, "the check met a frozen Sentinel")
        XCTAssertLessThan(worst, 0.9, "one Sentinel timeout per check, not one per Sentinel")
        XCTAssertEqual(client.statistics.masterResolutions, 1, "the master in use stayed in use")
    }

    /// Every Sentinel the client knows is gone (their outage, the master is fine) and the
    /// client's connection to the master is cut (a restarted proxy, Redis's `timeout`): the
    /// master confirmed last, still a master with a replica by `ROLE`, serves on a new connection. It was a
    /// 503 for every request until a Sentinel answered again.
    func testWithEverySentinelGoneTheMasterConfirmedLastServesAfterAReconnect() throws {
        let setup = try setup
        let real = setup.sentinelPorts[0]
        let master = try setup.currentMaster()
        var configuration = setup.configuration
        configuration.topology = .sentinel(sentinels: [.tcp(host: "127.0.0.1", port: real)], masterName: setup.masterName)
        let client = RedisClient(configuration: configuration)
        let key = key("g")
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "0"), key: key), .status("OK"))
        setup.kill(real)
        defer { try? setup.restart(real) }
        _ = try setup.connection(master).checked("CLIENT", "KILL", "TYPE", "normal")
        var answered = 0, failed = 0
        for _ in 0..<20 {
            if case .integer = (try? client.send(RedisCommand("INCR", key), key: key)) ?? .null { answered += 1 } else { failed += 1 }
        }
        XCTAssertLessThanOrEqual(failed, 1, "at most the request on the cut connection fails")
        XCTAssertEqual(Int(try setup.connection(master).checked("GET", key).text ?? ""), answered)

        // Without a replica connected, nothing proves it was not replaced meanwhile (its replica
        // promoted by Sentinels this host cannot reach): no master, rather than writes that a
        // resync would throw away (review of this change, s20).
        let replicas = setup.liveServers.filter { $0 != master }
        for replica in replicas { setup.kill(replica) }
        defer { for replica in replicas { try? setup.restart(replica) } }
        usleep(200_000)
        _ = try setup.connection(master).checked("CLIENT", "KILL", "TYPE", "normal")
        var written = 0
        for _ in 0..<5 { if case .integer = (try? client.send(RedisCommand("INCR", key), key: key)) ?? .null { written += 1 } }
        XCTAssertEqual(written, 0, "no write without a Sentinel or a replica to vouch for the master")
    }

    /// A switch-over (`SENTINEL FAILOVER`) under traffic from one client. The old master stays
    /// writable until Sentinel demotes it, which takes up to its 10 s INFO period; writes sent
    /// there meanwhile are lost when it resyncs. The client checks the Sentinels' answer at most
    /// every second, so within 1.5 s of the Sentinels naming the new master its writes land
    /// there. When the old master is finally demoted (its clients cut), no request fails with
    /// its `READONLY`: that means the command did not run, so the client asks again and resends.
    func testASwitchOverIsFollowedWithinASecondAndWithoutReadOnlyErrors() throws {
        let setup = try setup
        let before = try setup.currentMaster()
        let client = setup.client()
        let key = key("c")
        var errors: [String] = []
        var successes = 0
        func request() {
            do {
                let reply = try client.send(RedisCommand("INCR", key), key: key)
                if let error = reply.serverError { errors.append(error.message) } else { successes += 1 }
            } catch {
                errors.append("\(error)")
            }
            usleep(2000)
        }
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "0"), key: key), .status("OK"))
        try setup.connection(setup.sentinelPorts[1]).checked("SENTINEL", "FAILOVER", setup.masterName)
        let started = Date()
        var namedAt: Date?
        while namedAt == nil && Date().timeIntervalSince(started) < 20 {
            request()
            if (try? setup.currentMaster()) != before { namedAt = Date() }
        }
        let named = try XCTUnwrap(namedAt, "the Sentinels named a new master")
        let after = try setup.currentMaster()
        while Date().timeIntervalSince(named) < 1.5 { request() }
        let probe = key + ":probe"
        XCTAssertEqual(try client.send(RedisCommand("SET", probe, "here"), key: probe), .status("OK"))
        XCTAssertEqual(try setup.connection(after).checked("GET", probe).text, "here",
                       "1.5 s after the switch the client writes to the new master, not the old one")

        var demotedAt: Date?
        while Date().timeIntervalSince(started) < 25 {
            request()
            if demotedAt == nil, case .array(let role) = (try? setup.connection(before).checked("ROLE")) ?? .null, role.first?.text == "slave" {
                demotedAt = Date()
            }
            if let demotedAt, Date().timeIntervalSince(demotedAt) > 0.5 { break }
        }
        XCTAssertNotNil(demotedAt, "Sentinel demoted the old master")
        XCTAssertEqual(errors.filter { $0.contains("READONLY") }, [], "a demoted master's READONLY is followed, not returned")
        XCTAssertLessThanOrEqual(errors.count, 2, "at most requests cut by the demotion fail: \(errors)")
        XCTAssertGreaterThan(successes, 100)
        print("sentinel switch-over: named after \(String(format: "%.2f", named.timeIntervalSince(started))) s, old master demoted after "
              + "\(String(format: "%.2f", (demotedAt ?? started).timeIntervalSince(started))) s; \(errors.count) failed requests of "
              + "\(errors.count + successes): \(errors)")
    }

    /// A planned switch-over done the safe way (README, Known limits; `deploy/local
    /// switch-over`): writes paused on the old master (`CLIENT PAUSE … WRITE`) before
    /// `SENTINEL FAILOVER`, and the old master made a replica of the new one before the pause
    /// ends. Replication goes on, so the replica has every write when it is
    /// promoted, and no write lands on the old master before Sentinel demotes it: commands sent
    /// there meanwhile wait, time out (the client closes the connection, so they never run)
    /// and are asked of the new master once the Sentinels name it. Every acknowledged increment
    /// is on the new master; without the pause, hundreds were lost (about a second of writes).
    func testASwitchOverWithWritesPausedFirstLosesNoAcknowledgedWrite() throws {
        let setup = try RedisSentinelSetup(replicas: 1)
        defer { setup.stop() }
        let before = try setup.currentMaster()
        let client = setup.client()
        let key = key("m")
        var acknowledged = 0
        var connectionErrors = 0, errors: [String] = []
        func request() {
            do {
                let reply = try client.send(RedisCommand("INCR", key), key: key)
                if reply.integer != nil { acknowledged += 1 } else { errors.append("\(reply)") }
            } catch {
                connectionErrors += 1
            }
            usleep(1000)
        }
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "0"), key: key), .status("OK"))
        for _ in 0..<50 { request() }
        try setup.connection(before).checked("CLIENT", "PAUSE", "15000", "WRITE")
        try setup.connection(setup.sentinelPorts[0]).checked("SENTINEL", "FAILOVER", setup.masterName)
        let started = Date()
        var namedAt: Date?, demotedAt: Date?
        while Date().timeIntervalSince(started) < 25 {
            request()
            if namedAt == nil, let now = try? setup.currentMaster(), now != before {
                namedAt = Date()
                // The Sentinels' demotion waits behind the pause: made a replica here, then
                // unpaused (what deploy/local switch-over does).
                try setup.connection(before).checked("REPLICAOF", "127.0.0.1", String(now))
            }
            if demotedAt == nil, case .array(let role) = (try? setup.connection(before).checked("ROLE")) ?? .null, role.first?.text == "slave" {
                demotedAt = Date()
                try setup.connection(before).checked("CLIENT", "UNPAUSE")
            }
            if let demotedAt, Date().timeIntervalSince(demotedAt) > 2 { break }
        }
        let named = try XCTUnwrap(namedAt, "the Sentinels named a new master")
        let demoted = try XCTUnwrap(demotedAt, "the old master was made a replica")
        XCTAssertLessThan(demoted.timeIntervalSince(named), 2, "at once, not when the pause runs out")
        try setup.waitUntilHealthy()
        let after = try setup.currentMaster()
        let stored = Int(try setup.connection(after).checked("GET", key).text ?? "") ?? -1
        XCTAssertGreaterThanOrEqual(stored, acknowledged, "every acknowledged increment is on the new master")
        XCTAssertLessThanOrEqual(stored - acknowledged, connectionErrors, "only increments cut off unanswered may have run unacknowledged")
        XCTAssertEqual(errors, [], "no error answers (READONLY is followed)")
        XCTAssertGreaterThan(acknowledged, 300, "writes went on at the new master")
        print("sentinel switch-over, writes paused first: \(acknowledged) acknowledged, \(stored) stored, \(connectionErrors) timed out; "
              + "named after \(String(format: "%.2f", named.timeIntervalSince(started))) s")
    }

    /// The master the client uses is demoted without its clients being cut (an operator's
    /// `REPLICAOF`, the Sentinels told to watch the other node): the next write meets
    /// `READONLY`, which means it did not run, so the client asks the Sentinels again and sends
    /// it to the new master — one request, no error, not counted twice.
    func testADemotedMastersReadOnlyIsFollowedAndTheCommandResentOnce() throws {
        let setup = try setup
        let old = try setup.currentMaster()
        let new = try XCTUnwrap(setup.liveServers.first { $0 != old })
        let client = setup.client()
        let key = key("d")
        XCTAssertEqual(try client.send(RedisCommand("SET", key, "0"), key: key), .status("OK"))
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 2000).isConfirmed, true)

        try setup.connection(new).checked("REPLICAOF", "NO", "ONE")
        try setup.connection(old).checked("REPLICAOF", "127.0.0.1", String(new))
        for sentinel in setup.sentinelPorts {
            let connection = setup.connection(sentinel)
            try connection.checked("SENTINEL", "REMOVE", setup.masterName)
            try connection.checked("SENTINEL", "MONITOR", setup.masterName, "127.0.0.1", String(new), "2")
            try connection.checked("SENTINEL", "SET", setup.masterName, "down-after-milliseconds", String(setup.downAfterMilliseconds),
                                   "failover-timeout", String(setup.failoverTimeoutMilliseconds))
        }
        XCTAssertEqual(try setup.connection(old).checked("ROLE").array?.first?.text, "slave")

        // Well within the client's once-a-second check of the Sentinels: the INCR reaches the
        // old master first.
        XCTAssertEqual(try client.send(RedisCommand("INCR", key), key: key), .integer(1))
        XCTAssertEqual(client.statistics.masterResolutions, 2)
        XCTAssertEqual(try setup.connection(new).checked("GET", key).text, "1", "counted once, on the new master")
        try setup.waitUntilHealthy()
    }
}

private extension RedisReply {
    var array: [RedisReply]? {
        if case .array(let items) = self { return items }
        return nil
    }
}
