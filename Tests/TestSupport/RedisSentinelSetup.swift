import Foundation
import RedisClient

/// A master, its replicas and three `redis-sentinel` processes watching them (quorum 2,
/// `down-after-milliseconds` 1000, `failover-timeout` 3000), on free loopback ports, plain TCP
/// or TLS only. Ready when the replicas' links are up and every Sentinel knows the master, every
/// replica and the other Sentinels — a failover can only happen then.
///
/// Every process is stopped by its pid (`stop`, or when the object goes away). The helpers are
/// meant for one test thread at a time; traffic threads only read `url` and `configuration`.
public final class RedisSentinelSetup: @unchecked Sendable {
    // @unchecked: the process tables change only through the helpers, which one test thread
    // drives; what other threads read (`url`, `configuration`, the port lists) is constant.
    public let masterName = "mymaster"
    public let directory: URL
    public let tls: RedisServerTLS?
    /// Data nodes; the first started as the master.
    public let serverPorts: [Int]
    public let sentinelPorts: [Int]
    public let downAfterMilliseconds: Int
    public let failoverTimeoutMilliseconds: Int
    /// The Sentinels' own password (`requirepass`), when they require one.
    public let sentinelPassword: String?
    private var servers: [Int: ManagedProcess] = [:]
    private var sentinels: [Int: ManagedProcess] = [:]
    private var paused: Set<Int> = []

    public init(replicas: Int = 1, sentinels sentinelCount: Int = 3, tls: RedisServerTLS? = nil,
                downAfterMilliseconds: Int = 1000, failoverTimeoutMilliseconds: Int = 3000, sentinelPassword: String? = nil) throws {
        self.tls = tls
        self.sentinelPassword = sentinelPassword
        self.downAfterMilliseconds = downAfterMilliseconds
        self.failoverTimeoutMilliseconds = failoverTimeoutMilliseconds
        directory = try Paths.temporaryDirectory("sentinel")
        serverPorts = (0...replicas).map { _ in FreePort.next() }
        sentinelPorts = (0..<sentinelCount).map { _ in FreePort.next() }
        do {
            try startServer(serverPorts[0], replicaOf: nil)
            for port in serverPorts.dropFirst() { try startServer(port, replicaOf: serverPorts[0]) }
            for port in sentinelPorts { try startSentinel(port, master: serverPorts[0]) }
            try waitUntilHealthy()
        } catch {
            stop()
            throw error
        }
    }

    // MARK: - Addresses

    public var url: String {
        (tls == nil ? "redis-sentinel://" : "rediss-sentinel://") + sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/\(masterName)"
    }

    public var configuration: RedisConfiguration {
        var configuration = RedisConfiguration(topology: .sentinel(sentinels: sentinelPorts.map { .tcp(host: "127.0.0.1", port: $0) }, masterName: masterName),
                                               tls: tls?.clientConfiguration)
        configuration.sentinelPassword = sentinelPassword
        return configuration
    }

    /// A new client (as the store uses) for this deployment.
    public func client() -> RedisClient {
        RedisClient(configuration: configuration)
    }

    /// A new connection to a data node or a Sentinel, for the test's own inspection.
    public func connection(_ port: Int) -> RedisConnection {
        RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port),
                                                password: sentinelPorts.contains(port) ? sentinelPassword : nil,
                                                connectTimeoutMilliseconds: 500, commandTimeoutMilliseconds: 2000, tls: tls?.clientConfiguration))
    }

    public func pid(_ port: Int) -> Int32? { servers[port]?.pid ?? sentinels[port]?.pid }

    public var liveServers: [Int] { serverPorts.filter { servers[$0]?.isRunning == true && !paused.contains($0) } }
    public var liveSentinels: [Int] { sentinelPorts.filter { sentinels[$0]?.isRunning == true && !paused.contains($0) } }

    /// The master as the first live Sentinel names it.
    public func currentMaster() throws -> Int {
        for sentinel in liveSentinels {
            if let port = try? masterNamed(by: sentinel) { return port }
        }
        throw TestSupportError.protocolError("no Sentinel names a master")
    }

    // MARK: - Health

    /// Waits until every live Sentinel names the same master, which says it is one, every other
    /// live data node is its replica with the link up, and every live Sentinel sees each of those
    /// replicas as healthy and knows the other Sentinels.
    public func waitUntilHealthy(timeout: TimeInterval = 30) throws {
        try waitUntil("a healthy Sentinel deployment", timeout: timeout, interval: 0.1) { () throws -> Bool in
            let named = try Set(liveSentinels.map { try masterNamed(by: $0) })
            guard named.count == 1, let master = named.first, liveServers.contains(master) else { return false }
            guard case .array(let role) = try connection(master).checked("ROLE"), role.first?.text == "master" else { return false }
            let replicas = liveServers.filter { $0 != master }
            guard try connection(master).replicasAcknowledge(replicas.count, probeKey: "test-support:replication-probe") else { return false }
            for replica in replicas {
                let replication = try connection(replica).info("replication")
                guard replication["role"] == "slave", replication["master_port"] == String(master),
                      replication["master_link_status"] == "up" else { return false }
            }
            for sentinel in liveSentinels {
                let node = connection(sentinel)
                let state = try fields(node.checked("SENTINEL", "MASTER", masterName))
                let others = state["num-other-sentinels"].flatMap { Int($0) } ?? 0
                guard state["flags"] == "master", others >= sentinelPorts.count - 1 else { return false }
                guard case .array(let known) = try node.checked("SENTINEL", "REPLICAS", masterName) else { return false }
                var healthy: Set<Int> = []
                for entry in known {
                    let replica = fields(entry)
                    guard replica["flags"] == "slave", replica["master-link-status"] == "ok", let port = replica["port"].flatMap({ Int($0) }) else { continue }
                    healthy.insert(port)
                }
                guard Set(replicas).isSubset(of: healthy) else { return false }
            }
            return true
        }
    }

    // MARK: - Faults

    /// Kills the current master at once (SIGKILL) and returns its port.
    @discardableResult
    public func killMaster() throws -> Int {
        let master = try currentMaster()
        kill(master)
        return master
    }

    /// Kills a data node or a Sentinel (SIGKILL).
    public func kill(_ port: Int) {
        (servers[port] ?? sentinels[port])?.kill9()
        servers[port] = nil
        sentinels[port] = nil
        paused.remove(port)
    }

    /// Freezes a data node or a Sentinel (SIGSTOP).
    public func pause(_ port: Int) {
        (servers[port] ?? sentinels[port])?.pause()
        paused.insert(port)
    }

    /// Lets a paused process run again (SIGCONT).
    public func resume(_ port: Int) {
        (servers[port] ?? sentinels[port])?.resume()
        paused.remove(port)
    }

    /// Starts a killed data node again, empty, as a replica of the current master (as an
    /// operator brings a failed master back), or a killed Sentinel with its saved state.
    public func restart(_ port: Int) throws {
        if sentinelPorts.contains(port) {
            guard sentinels[port] == nil else { return }
            sentinels[port] = try ManagedProcess(name: "redis-sentinel:\(port)", executable: Paths.tool("redis-sentinel"),
                                                 arguments: [sentinelFile(port).path], logFile: folder(port).appendingPathComponent("sentinel.log"))
            guard FreePort.waitUntilListening(port) else { throw TestSupportError.didNotStart("redis-sentinel on \(port)") }
        } else {
            guard servers[port] == nil else { return }
            try startServer(port, replicaOf: try currentMaster())
        }
    }

    /// Waits until every live Sentinel names another master than `oldMaster`, and that node
    /// says it is the master; returns its port.
    @discardableResult
    public func waitForPromotion(from oldMaster: Int, timeout: TimeInterval = 30) throws -> Int {
        var promoted = 0
        try waitUntil("a Sentinel failover away from \(oldMaster)", timeout: timeout, interval: 0.05) { () throws -> Bool in
            let named = try Set(liveSentinels.map { try masterNamed(by: $0) })
            guard named.count == 1, let master = named.first, master != oldMaster else { return false }
            guard case .array(let role) = try connection(master).checked("ROLE"), role.first?.text == "master" else { return false }
            promoted = master
            return true
        }
        return promoted
    }

    // MARK: - Life cycle

    /// Stops every process by its pid.
    public func stop() {
        for (_, process) in sentinels { process.stop(timeout: 5) }
        for (_, process) in servers { process.stop(timeout: 5) }
        sentinels = [:]
        servers = [:]
        paused = []
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    private func folder(_ port: Int) -> URL { directory.appendingPathComponent("node-\(port)") }
    private func sentinelFile(_ port: Int) -> URL { folder(port).appendingPathComponent("sentinel.conf") }

    private func masterNamed(by sentinel: Int) throws -> Int {
        guard case .array(let address) = try connection(sentinel).checked("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName),
              address.count == 2, let port = address[1].text.flatMap({ Int($0) }) else {
            throw TestSupportError.protocolError("Sentinel \(sentinel) names no master")
        }
        return port
    }

    private func fields(_ reply: RedisReply) -> [String: String] {
        guard case .array(let items) = reply else { return [:] }
        var result: [String: String] = [:]
        var index = 0
        while index + 1 < items.count {
            if let name = items[index].text, let value = items[index + 1].text { result[name] = value }
            index += 2
        }
        return result
    }

    private func startServer(_ port: Int, replicaOf master: Int?) throws {
        let directory = folder(port)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let listen = tls?.serverArguments(port: port) ?? ["--port", String(port)]
        servers[port] = try ManagedProcess(
            name: "redis-server:\(port)", executable: Paths.tool("redis-server"),
            arguments: listen + ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
                                 "--enable-debug-command", "local", "--dir", directory.path]
                + (master.map { ["--replicaof", "127.0.0.1", String($0)] } ?? []),
            logFile: directory.appendingPathComponent("redis.log"))
        guard FreePort.waitUntilListening(port) else { throw TestSupportError.didNotStart("redis-server on \(port)") }
    }

    private func startSentinel(_ port: Int, master: Int) throws {
        let directory = folder(port)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let lines = (tls?.configurationLines(port: port) ?? ["port \(port)"]) + [
            "bind 127.0.0.1",
            "dir \(directory.path)",
            "sentinel monitor \(masterName) 127.0.0.1 \(master) 2",
            "sentinel down-after-milliseconds \(masterName) \(downAfterMilliseconds)",
            "sentinel failover-timeout \(masterName) \(failoverTimeoutMilliseconds)",
            "sentinel parallel-syncs \(masterName) 1",
        ] + (sentinelPassword.map { ["requirepass \($0)"] } ?? [])
        // Sentinel rewrites its file (what it learnt), so it must be a writable file of its own.
        try (lines.joined(separator: "\n") + "\n").write(to: sentinelFile(port), atomically: true, encoding: .utf8)
        sentinels[port] = try ManagedProcess(name: "redis-sentinel:\(port)", executable: Paths.tool("redis-sentinel"),
                                             arguments: [sentinelFile(port).path], logFile: directory.appendingPathComponent("sentinel.log"))
        guard FreePort.waitUntilListening(port) else { throw TestSupportError.didNotStart("redis-sentinel on \(port)") }
    }
}
