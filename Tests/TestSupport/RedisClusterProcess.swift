import Foundation
import RedisClient

/// A real Redis Cluster of `redis-server` processes on free loopback ports (by default 3
/// masters with 1 replica each), made with `redis-cli --cluster create`, ready when every node
/// says `cluster_state:ok`, every replica's link is up and every node reports the same slot
/// map with every replica in it. Node timeout 2000 ms and `cluster-replica-validity-factor 0`
/// make failovers quick and certain; replicas never migrate between masters, so the shape only
/// changes by the faults a test injects (kill, pause, slot migration).
///
/// Every process is stopped by its pid (`stop`, or when the object goes away). The helpers
/// block the calling test thread and are meant for one thread at a time; traffic threads only
/// read `url` and `configuration`.
public final class RedisClusterProcess: @unchecked Sendable {
    // @unchecked: `processes` and `paused` change only through the helpers, which one test
    // thread drives; the properties other threads read (`url`, `configuration`, `ports`) are
    // constants.
    public let directory: URL
    public let tls: RedisServerTLS?
    public let nodeTimeoutMilliseconds: Int
    /// The client port of every node, in the order given to `redis-cli --cluster create`
    /// (masters first).
    public let ports: [Int]
    /// The cluster bus port of each node (`cluster-port`, chosen free too).
    public let busPorts: [Int: Int]
    private var processes: [Int: ManagedProcess] = [:]
    private var paused: Set<Int> = []
    private var nodeIDs: [Int: String] = [:]

    public init(masters: Int = 3, replicasPerMaster: Int = 1, tls: RedisServerTLS? = nil, nodeTimeoutMilliseconds: Int = 2000) throws {
        self.tls = tls
        self.nodeTimeoutMilliseconds = nodeTimeoutMilliseconds
        directory = try Paths.temporaryDirectory("cluster")
        let ports = (0..<masters * (1 + replicasPerMaster)).map { _ in FreePort.next() }
        self.ports = ports
        var busPorts: [Int: Int] = [:]
        for port in ports { busPorts[port] = FreePort.next() }
        self.busPorts = busPorts
        do {
            for port in ports { try startNode(port) }
            try create(replicasPerMaster: replicasPerMaster)
            for port in ports { nodeIDs[port] = try connection(port).checked("CLUSTER", "MYID").text }
            try waitUntilHealthy()
        } catch {
            stop()
            throw error
        }
    }

    // MARK: - Addresses

    public var url: String {
        (tls == nil ? "redis-cluster://" : "rediss-cluster://") + ports.map { "127.0.0.1:\($0)" }.joined(separator: ",")
    }

    /// The cluster as a client configuration, every node a seed.
    public var configuration: RedisConfiguration {
        RedisConfiguration(topology: .cluster(seeds: ports.map { .tcp(host: "127.0.0.1", port: $0) }), tls: tls?.clientConfiguration)
    }

    /// A new client (as the store uses) for this cluster.
    public func client() -> RedisClient {
        RedisClient(configuration: configuration)
    }

    /// A new connection to one node, for the test's own inspection (no cluster routing).
    public func connection(_ port: Int) -> RedisConnection {
        RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port), connectTimeoutMilliseconds: 500,
                                                commandTimeoutMilliseconds: 2000, tls: tls?.clientConfiguration))
    }

    /// The pid of the node on `port`, if it runs.
    public func pid(_ port: Int) -> Int32? { processes[port]?.pid }

    /// Nodes that run and are not paused.
    public var liveNodes: [Int] { ports.filter { processes[$0]?.isRunning == true && !paused.contains($0) } }

    /// The node id of the node on `port`.
    public func nodeID(_ port: Int) -> String? { nodeIDs[port] }

    // MARK: - Topology

    /// One range of `CLUSTER SLOTS`, by port.
    public struct SlotRange: Hashable, Sendable {
        public let slots: ClosedRange<Int>
        public let master: Int
        /// The replicas the node reports for this range (failed and not yet synced ones are left out).
        public let replicas: Set<Int>
    }

    /// `CLUSTER SLOTS` as the node on `port` reports it.
    public func slotRanges(from port: Int) throws -> Set<SlotRange> {
        guard case .array(let ranges) = try connection(port).checked("CLUSTER", "SLOTS") else {
            throw TestSupportError.protocolError("CLUSTER SLOTS from \(port)")
        }
        var result: Set<SlotRange> = []
        for range in ranges {
            guard case .array(let fields) = range, fields.count >= 3, let start = fields[0].integer, let end = fields[1].integer else {
                throw TestSupportError.protocolError("CLUSTER SLOTS range from \(port)")
            }
            let nodes = fields.dropFirst(2).compactMap { node -> Int? in
                guard case .array(let parts) = node, parts.count >= 2, let port = parts[1].integer else { return nil }
                return Int(port)
            }
            result.insert(SlotRange(slots: Int(start)...Int(end), master: nodes[0], replicas: Set(nodes.dropFirst())))
        }
        return result
    }

    /// The master serving `slot`, as a live node reports it.
    public func master(ofSlot slot: Int) throws -> Int {
        for port in liveNodes {
            if let range = try? slotRanges(from: port).first(where: { $0.slots.contains(slot) }) { return range.master }
        }
        throw TestSupportError.protocolError("no live node knows who serves slot \(slot)")
    }

    /// The master serving `key`.
    public func master(ofKey key: String) throws -> Int { try master(ofSlot: HashSlot.of(key)) }

    /// The current masters, as a live node reports them.
    public func masters() throws -> [Int] {
        for port in liveNodes {
            if let ranges = try? slotRanges(from: port) { return Array(Set(ranges.map(\.master))).sorted() }
        }
        throw TestSupportError.protocolError("no live node answers CLUSTER SLOTS")
    }

    /// Live replicas of `master`, by their own account (`ROLE`).
    public func replicas(of master: Int) -> [Int] {
        liveNodes.filter { port in
            guard case .array(let role) = (try? connection(port).checked("ROLE")) ?? .null else { return false }
            return role.first?.text == "slave" && role.count >= 3 && role[2].integer == Int64(master)
        }
    }

    /// A slot served by `master` (the first of its first range).
    public func slot(servedBy master: Int) throws -> Int {
        for port in liveNodes {
            if let range = try? slotRanges(from: port).filter({ $0.master == master }).min(by: { $0.slots.lowerBound < $1.slots.lowerBound }) {
                return range.slots.lowerBound
            }
        }
        throw TestSupportError.protocolError("\(master) serves no slot")
    }

    /// A hash tag (`{…}` in a key) whose slot `master` serves: keys carrying it all live there.
    public func hashTag(servedBy master: Int) throws -> String {
        guard let port = liveNodes.first else { throw TestSupportError.protocolError("no live node") }
        let ranges = try slotRanges(from: port).filter { $0.master == master }
        for index in 0..<100_000 {
            let tag = "t\(index)"
            let slot = HashSlot.of("{\(tag)}")
            if ranges.contains(where: { $0.slots.contains(slot) }) { return tag }
        }
        throw TestSupportError.protocolError("no hash tag found for \(master)")
    }

    /// Waits until the cluster is whole again: every live node says `cluster_state:ok`, every
    /// live replica's link to its master is up, and every live node reports the same slot map,
    /// with every live replica in it and only live masters.
    public func waitUntilHealthy(timeout: TimeInterval = 30) throws {
        try waitUntil("a healthy cluster", timeout: timeout, interval: 0.1) { () throws -> String? in
            let live = liveNodes
            var replicaCount = 0
            for port in live {
                let node = connection(port)
                let state = try node.clusterInfo()["cluster_state"]
                guard state == "ok" else { return "\(port): cluster_state \(state ?? "?")" }
                let replication = try node.info("replication")
                if replication["role"] == "slave" {
                    guard replication["master_link_status"] == "up" else { return "\(port): replica link down" }
                    replicaCount += 1
                }
            }
            let maps = try live.map { try slotRanges(from: $0) }
            guard let first = maps.first else { return "no live node" }
            guard maps.allSatisfy({ $0 == first }) else { return "nodes disagree on the slot map" }
            guard first.map(\.slots.count).reduce(0, +) == HashSlot.count else { return "slots not all served" }
            let listed = Set(first.flatMap(\.replicas))
            guard listed.count == replicaCount, listed.isSubset(of: live) else { return "CLUSTER SLOTS lists replicas \(listed.sorted()), \(replicaCount) live" }
            guard Set(first.map(\.master)).isSubset(of: live) else { return "a master in the map is not live" }
            for master in Set(first.map(\.master)) {
                let replicas = Set(first.filter { $0.master == master }.flatMap(\.replicas)).count
                guard let slot = first.first(where: { $0.master == master })?.slots.lowerBound,
                      try connection(master).replicasAcknowledge(replicas, probeKey: "test-support:replication-probe{\(Self.hashTag(forSlot: slot))}") else {
                    return "\(master): not every replica acknowledges writes yet"
                }
            }
            return nil
        }
    }

    /// A hash tag whose slot is `slot` (found by trying `p0`, `p1`, …).
    static func hashTag(forSlot slot: Int) -> String {
        if let known = probeTags.withLock({ $0[slot] }) { return known }
        var index = 0
        while HashSlot.of("{p\(index)}") != slot { index += 1 }
        probeTags.withLock { $0[slot] = "p\(index)" }
        return "p\(index)"
    }

    private static let probeTags = LockedValue<[Int: String]>([:])

    // MARK: - Faults

    /// Kills the node at once (SIGKILL), as a crash would. Its folder stays, so `restart`
    /// brings it back with its cluster identity.
    public func kill(_ port: Int) {
        processes[port]?.kill9()
        processes[port] = nil
        paused.remove(port)
    }

    /// Freezes the node (SIGSTOP): it keeps its sockets but answers nothing.
    public func pause(_ port: Int) {
        processes[port]?.pause()
        paused.insert(port)
    }

    /// Lets a paused node run again (SIGCONT).
    public func resume(_ port: Int) {
        processes[port]?.resume()
        paused.remove(port)
    }

    /// Starts a killed node again with its cluster identity (nodes.conf) and an empty dataset:
    /// a master that was failed over rejoins as a replica of its successor.
    public func restart(_ port: Int) throws {
        guard processes[port] == nil else { return }
        try startNode(port)
    }

    /// Waits until every live node says `slot` is served by another node than `oldMaster` and
    /// the cluster state is ok everywhere; returns the new master. The replica that took over
    /// answers from then on.
    @discardableResult
    public func waitForFailover(ofSlot slot: Int, from oldMaster: Int, timeout: TimeInterval = 30) throws -> Int {
        var successor = 0
        try waitUntil("the failover of \(oldMaster)", timeout: timeout, interval: 0.05) { () throws -> Bool in
            let live = liveNodes
            var owners: Set<Int> = []
            for port in live {
                let node = connection(port)
                guard try node.clusterInfo()["cluster_state"] == "ok" else { return false }
                guard let range = try slotRanges(from: port).first(where: { $0.slots.contains(slot) }) else { return false }
                owners.insert(range.master)
            }
            guard owners.count == 1, let owner = owners.first, owner != oldMaster, live.contains(owner) else { return false }
            guard case .array(let role) = try connection(owner).checked("ROLE"), role.first?.text == "master" else { return false }
            successor = owner
            return true
        }
        return successor
    }

    // MARK: - Slot migration

    /// A slot being moved from one master to another, step by step.
    public struct SlotMigration: Sendable {
        public let slot: Int
        public let source: Int
        public let target: Int
    }

    /// Marks `slot` IMPORTING on `target` and MIGRATING on its current master. From now on the
    /// source answers `ASK` for keys of the slot it no longer holds.
    public func beginMigration(slot: Int, to target: Int) throws -> SlotMigration {
        let source = try master(ofSlot: slot)
        guard source != target, let sourceID = nodeIDs[source], let targetID = nodeIDs[target] else {
            throw TestSupportError.protocolError("cannot move slot \(slot) from \(source) to \(target)")
        }
        try connection(target).checked("CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID)
        try connection(source).checked("CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID)
        return SlotMigration(slot: slot, source: source, target: target)
    }

    /// Moves up to `batch` keys of the slot to the target (`MIGRATE … KEYS`); returns how many
    /// moved (0 when the source holds none any more).
    @discardableResult
    public func migrateKeys(_ migration: SlotMigration, batch: Int = 10) throws -> Int {
        let source = connection(migration.source)
        guard case .array(let keys) = try source.checked("CLUSTER", "GETKEYSINSLOT", String(migration.slot), String(batch)),
              !keys.isEmpty else { return 0 }
        try source.checked(arguments: ["MIGRATE", "127.0.0.1", String(migration.target), "", "0", "5000", "KEYS"] + keys.compactMap(\.text))
        return keys.count
    }

    /// Moves every remaining key, then assigns the slot to the target on the target, the source
    /// and every other master (as `redis-cli --cluster` does). From now on the old master
    /// answers `MOVED`.
    public func finishMigration(_ migration: SlotMigration) throws {
        while try migrateKeys(migration, batch: 100) > 0 {}
        guard let targetID = nodeIDs[migration.target] else { throw TestSupportError.protocolError("unknown target") }
        try connection(migration.target).checked("CLUSTER", "SETSLOT", String(migration.slot), "NODE", targetID)
        try connection(migration.source).checked("CLUSTER", "SETSLOT", String(migration.slot), "NODE", targetID)
        for port in try masters() where port != migration.target && port != migration.source {
            try connection(port).checked("CLUSTER", "SETSLOT", String(migration.slot), "NODE", targetID)
        }
    }

    // MARK: - Statistics

    /// Resets `INFO commandstats` on every live node.
    public func resetStatistics() throws {
        for port in liveNodes { try connection(port).checked("CONFIG", "RESETSTAT") }
    }

    /// Calls per command on the node on `port` (`INFO commandstats`).
    public func commandCalls(_ port: Int) throws -> [String: Int] {
        try connection(port).commandCalls()
    }

    // MARK: - Life cycle

    /// Stops every node by its pid.
    public func stop() {
        for (_, process) in processes { process.stop(timeout: 5) }
        processes = [:]
        paused = []
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    private func nodeDirectory(_ port: Int) -> URL { directory.appendingPathComponent("node-\(port)") }

    private func startNode(_ port: Int) throws {
        let folder = nodeDirectory(port)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let listen = tls?.serverArguments(port: port, cluster: true) ?? ["--port", String(port)]
        processes[port] = try ManagedProcess(
            name: "redis-server:\(port)", executable: Paths.tool("redis-server"),
            arguments: listen + [
                "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-port", String(busPorts[port] ?? 0),
                "--cluster-config-file", folder.appendingPathComponent("nodes.conf").path,
                "--cluster-node-timeout", String(nodeTimeoutMilliseconds), "--cluster-replica-validity-factor", "0",
                "--cluster-allow-replica-migration", "no", "--repl-diskless-sync-delay", "0",
                // A replica enters CLUSTER SLOTS once its offset is above 0, which without
                // writes takes the master's first replication ping (10 s by default).
                "--repl-ping-replica-period", "1",
                "--save", "", "--appendonly", "no", "--enable-debug-command", "local", "--dir", folder.path,
            ],
            logFile: folder.appendingPathComponent("redis.log"))
        guard FreePort.waitUntilListening(port) else { throw TestSupportError.didNotStart("cluster node on \(port)") }
    }

    private func create(replicasPerMaster: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.tool("redis-cli"))
        process.arguments = (tls?.redisCLIArguments ?? []) + ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" }
            + ["--cluster-replicas", String(replicasPerMaster), "--cluster-yes"]
        let log = directory.appendingPathComponent("create.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        guard process.terminationStatus == 0 else {
            throw TestSupportError.didNotStart("redis-cli --cluster create: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        }
    }
}
