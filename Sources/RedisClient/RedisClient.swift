import Glibc

/// A client for one Redis deployment — a single node, a Redis Cluster, or the master that
/// Redis Sentinel names — used from one thread (one per worker). Every command carries the key
/// it touches (if any) so it goes to the node that owns the key:
///
/// - **Cluster**: the slot map comes from `CLUSTER SLOTS` (loaded lazily, refreshed after a
///   `MOVED` or a node failure, at most every 100 ms); `MOVED` updates the map and resends,
///   `ASK` resends once to the named node after `ASKING`; `TRYAGAIN` and `CLUSTERDOWN` are
///   retried after short pauses until the command timeout; nodes that left the map are dropped.
///   Connections are made per node, lazily.
/// - **Sentinel**: the master is asked of the Sentinels (`SENTINEL get-master-addr-by-name`)
///   and checked with `ROLE`; it is resolved again on every reconnect and after a `READONLY` or
///   `LOADING` answer, so a failover is followed without restarting anything.
///
/// A command is never resent after it may have reached a server, except after `MOVED`/`ASK`/
/// `TRYAGAIN`/`CLUSTERDOWN` answers, which mean it did not run; a refused connect (nothing
/// sent) is retried on a refreshed cluster map.
///
/// Writes are remembered per node, so `waitForReplicas` can ask each node that took a write
/// since the last call to confirm it on its replicas (`WAIT`).
public final class RedisClient {
    public let configuration: RedisConfiguration
    private var tlsContext: TLSContext?
    private var connections: [RedisAddress: RedisConnection] = [:]
    private var sentinelConnections: [RedisAddress: RedisConnection] = [:]
    private var slotMap = ClusterSlotMap()
    private var slotMapStale = true
    private var lastSlotMapRefresh: UInt64 = 0
    /// Cluster nodes whose last command or connect failed at the connection level: a map
    /// refresh asks them last, so a dead or frozen master does not hold up every refresh.
    private var suspects: Set<RedisAddress> = []
    private var master: RedisAddress?
    /// Nodes written to since the last `waitForReplicas`, with the connection (its
    /// `connectionsOpened`) that carried the writes; `-1` when several did.
    private var writtenNodes: [RedisAddress: Int] = [:]
    private var replicaCounts: [RedisAddress: (count: Int, checkedAt: UInt64)] = [:]
    /// Whether any node of the deployment was ever seen with a replica (sticky: a replica that
    /// is down later makes a wait fall short, it does not make waiting pointless).
    private var replicatedDeployment = false
    /// When a cluster map showing no replica for a written node was last reloaded for `WAIT`.
    private var lastReplicaCheck: UInt64 = 0
    /// A command buffer reused by `run(_:keyCount:routingKey:_:)`, the hot path.
    private var scratch = RedisCommand(reservingBytes: 256, arguments: 12)
    /// What happened, for logs and metrics.
    public private(set) var statistics = RedisClientStatistics()

    public init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    /// Fails now (with the reason) when the TLS settings cannot work: a CA, certificate or key
    /// file that cannot be loaded. Call at start so a typo is not first seen as 503s.
    public func validateTLS() throws(RedisError) {
        _ = try sharedTLSContext()
    }

    // MARK: - Commands

    /// Sends `command` to the node owning `key` (any node for `nil`) and returns its reply;
    /// server error replies come back as `.error` values.
    public func send(_ command: RedisCommand, key: String?) throws(RedisError) -> RedisReply {
        guard command.count > 0 else { throw .invalidCommand }
        return try execute(command, key: key)
    }

    /// Sends every command to its key's node, one pipelined round trip per node (all nodes
    /// written first, then all read), and returns the replies in order.
    public func pipeline(_ items: [(command: RedisCommand, key: String?)]) throws(RedisError) -> [RedisReply] {
        guard !items.isEmpty else { return [] }
        guard items.allSatisfy({ $0.command.count > 0 }) else { throw .invalidCommand }
        switch configuration.topology {
        case .single, .sentinel:
            let address = try targetForUnkeyed()
            let connection = try self.connection(address)
            do {
                let replies = try connection.pipeline(items.map(\.command))
                noteWrite(address)
                return try followSentinelAnswers(replies, from: address)
            } catch {
                forgetMasterIfSentinel(address)
                throw error
            }
        case .cluster:
            return try clusterPipeline(items)
        }
    }

    /// Runs `script` (`EVALSHA`, `EVAL` once after `NOSCRIPT`) on the node owning `routingKey`;
    /// `addArguments` appends the keys, then the other arguments. A server error reply other than
    /// `NOSCRIPT` is thrown as `.server`. Builds the command in a reused buffer (the hot path).
    public func run(_ script: RedisScript, keyCount: Int, routingKey: String, _ addArguments: (inout RedisCommand) -> Void) throws(RedisError) -> RedisReply {
        var command = scratch
        scratch = RedisCommand()
        command.removeAll()
        command.append("EVALSHA")
        command.append(script.sha1)
        command.append(keyCount)
        addArguments(&command)
        let sent = Result { () throws(RedisError) in try execute(command, key: routingKey) }
        scratch = command
        let reply = try sent.get()
        if let error = reply.serverError {
            guard error.code == "NOSCRIPT" else { throw .server(error) }
            var full = RedisCommand(reservingBytes: script.source.utf8.count + 160, arguments: 8)
            full.append("EVAL")
            full.append(script.source)
            full.append(keyCount)
            addArguments(&full)
            let retried = try execute(full, key: routingKey)
            if let error = retried.serverError { throw .server(error) }
            return retried
        }
        return reply
    }

    /// Runs `script` with these keys (the first routes it) and arguments.
    public func run(_ script: RedisScript, keys: [String], arguments: [String]) throws(RedisError) -> RedisReply {
        try run(script, keyCount: keys.count, routingKey: keys.first ?? "") { command in
            for key in keys { command.append(key) }
            for argument in arguments { command.append(argument) }
        }
    }

    /// Runs several script calls pipelined (see `pipeline`); calls answered `NOSCRIPT` did not
    /// run and are sent again as `EVAL`. Server errors stay in the replies.
    public func runPipelined(_ calls: [RedisScriptCall]) throws(RedisError) -> [RedisReply] {
        var replies = try pipeline(calls.map { ($0.command("EVALSHA", $0.script.sha1), $0.routingKey) })
        let missing = replies.indices.filter { replies[$0].serverError?.code == "NOSCRIPT" }
        guard !missing.isEmpty else { return replies }
        let retried = try pipeline(missing.map { (calls[$0].command("EVAL", calls[$0].script.source), calls[$0].routingKey) })
        for (index, reply) in zip(missing, retried) { replies[index] = reply }
        return replies
    }

    /// Asks every node that took a write since the last call to confirm its writes on
    /// `replicas` replicas (`nil`: 1 once the deployment has shown a replica anywhere — a node
    /// whose replica is down then falls short instead of being skipped), within
    /// `timeoutMilliseconds`. Returns the weakest outcome. Writes whose connection was lost
    /// before the wait cannot be vouched for by `WAIT` on another one and count as
    /// unacknowledged. The writes are not undone either way.
    public func waitForReplicas(_ replicas: Int?, timeoutMilliseconds: Int) throws(RedisError) -> ReplicationOutcome {
        let nodes = writtenNodes
        writtenNodes = [:]
        var outcome = ReplicationOutcome(required: 0, acknowledged: 0)
        for (node, carrier) in nodes {
            let required: Int
            if let replicas { required = replicas } else { required = try expectsReplicas(node) ? 1 : 0 }
            guard required > 0 else { continue }
            let connection = try self.connection(node)
            var acknowledged: Int64 = 0
            if carrier >= 0 && connection.isConnected && connection.connectionsOpened == carrier {
                let reply = try connection.send(RedisCommand("WAIT", String(required), String(timeoutMilliseconds)))
                guard let count = reply.integer else {
                    throw reply.serverError.map { .server($0) } ?? .unexpectedReply("WAIT answered \(reply)")
                }
                // A reconnect on the way (the idle check) means this WAIT spoke for no write.
                acknowledged = connection.connectionsOpened == carrier ? count : 0
            }
            statistics.waits += 1
            if acknowledged < required { statistics.waitShortfalls += 1 }
            let candidate = ReplicationOutcome(required: required, acknowledged: Int(acknowledged))
            if outcome.required == 0 || candidate.shortfall > outcome.shortfall { outcome = candidate }
        }
        return outcome
    }

    /// `PING` to every master the client knows (all of a cluster's), throwing when one does not
    /// answer `PONG`.
    public func checkHealth() throws(RedisError) {
        let targets: [RedisAddress]
        switch configuration.topology {
        case .cluster:
            if slotMapStale { try refreshSlotMap() }
            targets = slotMap.masters
            guard slotMap.coversAllSlots else { throw .server(RedisServerError(message: "CLUSTERDOWN not every slot is served")) }
        default:
            targets = [try targetForUnkeyed()]
        }
        for target in targets {
            let reply = try connection(target).send(RedisCommand("PING"))
            guard reply.text == "PONG" else { throw reply.serverError.map { .server($0) } ?? .unexpectedReply("PING answered \(reply)") }
        }
    }

    /// Closes every connection.
    public func close() {
        for connection in connections.values { connection.close() }
        for connection in sentinelConnections.values { connection.close() }
    }

    // MARK: - Routing

    private func execute(_ command: RedisCommand, key: String?) throws(RedisError) -> RedisReply {
        switch configuration.topology {
        case .single, .sentinel:
            let address = try targetForUnkeyed()
            let reply: RedisReply
            do {
                reply = try connection(address).send(command)
            } catch {
                forgetMasterIfSentinel(address)
                throw error
            }
            noteWrite(address)
            return try followSentinelAnswers([reply], from: address)[0]
        case .cluster:
            return try clusterExecute(command, slot: key.map { HashSlot.of($0) })
        }
    }

    /// The node for commands in single and Sentinel mode.
    private func targetForUnkeyed() throws(RedisError) -> RedisAddress {
        switch configuration.topology {
        case .single(let address): return address
        case .sentinel(let sentinels, let name): return try resolveMaster(sentinels: sentinels, name: name)
        case .cluster(let seeds):
            if slotMapStale { try? refreshSlotMap() }
            guard let any = slotMap.masters.first ?? seeds.first else { throw .connectFailed("no cluster node known") }
            return any
        }
    }

    private func connection(_ address: RedisAddress) throws(RedisError) -> RedisConnection {
        if let existing = connections[address] { return existing }
        let created = RedisConnection(endpoint: configuration.endpoint(address), tlsContext: try sharedTLSContext())
        connections[address] = created
        return created
    }

    private func sharedTLSContext() throws(RedisError) -> TLSContext? {
        guard let tls = configuration.tls else { return nil }
        if let tlsContext { return tlsContext }
        let created = try TLSContext(tls)
        tlsContext = created
        return created
    }

    // MARK: - Cluster

    private func clusterExecute(_ command: RedisCommand, slot: Int?) throws(RedisError) -> RedisReply {
        let deadline = Deadline(millisecondsFromNow: configuration.commandTimeoutMilliseconds)
        var redirects = 0
        var asking: RedisAddress?
        while true {
            if slotMapStale { try? refreshSlotMap() }
            let owner = slot.flatMap { slotMap.owner(of: $0) }
            guard let target = asking ?? owner ?? slotMap.masters.first ?? seedAddresses.first else {
                throw .connectFailed("no cluster node known")
            }
            let connection = try self.connection(target)
            let reply: RedisReply
            do {
                reply = asking == nil ? try connection.send(command) : try connection.pipeline([RedisCommand("ASKING"), command])[1]
            } catch {
                slotMapStale = true
                suspects.insert(target)
                // A refused connect sent nothing: try again on a refreshed map, a few times.
                if case .connectFailed = error, redirects < 3, !deadline.hasPassed {
                    redirects += 1
                    asking = nil
                    continue
                }
                throw error
            }
            noteWrite(target)
            if !suspects.isEmpty { suspects.remove(target) }
            guard let error = reply.serverError else { return reply }
            if let redirect = ClusterRedirect(error), redirects < 5 {
                redirects += 1
                switch redirect.kind {
                case .moved:
                    statistics.moved += 1
                    slotMap.move(redirect.slot, to: redirect.address)
                    slotMapStale = true
                    asking = nil
                case .ask:
                    statistics.asked += 1
                    asking = redirect.address
                }
                continue
            }
            if error.code == "TRYAGAIN" || error.code == "CLUSTERDOWN", !deadline.hasPassed {
                statistics.tryAgains += 1
                if error.code == "CLUSTERDOWN" { slotMapStale = true }
                usleep(UInt32(min(25, max(1, deadline.remainingMilliseconds))) * 1000)
                asking = nil
                continue
            }
            return reply
        }
    }

    /// Groups commands by node, writes every group, then reads every group; replies that are
    /// redirections or "try again" are resent one by one.
    private func clusterPipeline(_ items: [(command: RedisCommand, key: String?)]) throws(RedisError) -> [RedisReply] {
        if slotMapStale { try? refreshSlotMap() }
        var groups: [RedisAddress: [Int]] = [:]
        var order: [RedisAddress] = []
        for (index, item) in items.enumerated() {
            guard let target = item.key.flatMap({ slotMap.owner(of: HashSlot.of($0)) }) ?? slotMap.masters.first ?? seedAddresses.first else {
                throw .connectFailed("no cluster node known")
            }
            if groups[target] == nil { order.append(target) }
            groups[target, default: []].append(index)
        }
        var replies = [RedisReply](repeating: .null, count: items.count)
        // Nodes written to whose replies are not read yet: if the pipeline stops half way their
        // connections are closed, or their next command would read these replies as its own.
        var unread: [RedisAddress] = []
        var current = order[0]
        do {
            for target in order {
                current = target
                try connection(target).write(groups[target, default: []].map { items[$0].command })
                unread.append(target)
            }
            for target in order {
                current = target
                let indices = groups[target, default: []]
                for (index, reply) in zip(indices, try connection(target).readReplies(indices.count)) { replies[index] = reply }
                unread.removeFirst()
                noteWrite(target)
            }
        } catch {
            for target in unread { connections[target]?.close() }
            slotMapStale = true
            suspects.insert(current)
            throw error
        }
        if !suspects.isEmpty { suspects.subtract(order) }
        for index in replies.indices {
            guard let error = replies[index].serverError,
                  ClusterRedirect(error) != nil || error.code == "TRYAGAIN" || error.code == "CLUSTERDOWN" else { continue }
            replies[index] = try clusterExecute(items[index].command, slot: items[index].key.map { HashSlot.of($0) })
        }
        return replies
    }

    private var seedAddresses: [RedisAddress] {
        if case .cluster(let seeds) = configuration.topology { return seeds }
        return []
    }

    /// Loads the slot map from the first node that answers (known masters, then the seeds;
    /// nodes that failed last time after all others) and drops connections to nodes no longer
    /// in it. At most every 100 ms.
    private func refreshSlotMap() throws(RedisError) {
        let now = Deadline.now()
        if !slotMap.masters.isEmpty, now &- lastSlotMapRefresh < 100_000_000 { return }
        lastSlotMapRefresh = now
        var candidates = slotMap.masters
        for seed in seedAddresses where !candidates.contains(seed) { candidates.append(seed) }
        candidates = candidates.filter { !suspects.contains($0) } + candidates.filter { suspects.contains($0) }
        var lastError = RedisError.connectFailed("no cluster node answered CLUSTER SLOTS")
        for address in candidates {
            do {
                let reply = try connection(address).send(RedisCommand("CLUSTER", "SLOTS"))
                guard let map = ClusterSlotMap(clusterSlots: reply, answeredBy: address) else {
                    lastError = reply.serverError.map { .server($0) } ?? .unexpectedReply("CLUSTER SLOTS from \(address)")
                    continue
                }
                slotMap = map
                slotMapStale = false
                suspects.remove(address)
                if map.hasReplicas { replicatedDeployment = true }
                statistics.slotMapRefreshes += 1
                for (known, connection) in connections where !map.masters.contains(known) {
                    connection.close()
                    connections[known] = nil
                }
                suspects.formIntersection(candidates)
                return
            } catch {
                suspects.insert(address)
                lastError = error
            }
        }
        throw lastError
    }

    // MARK: - Sentinel

    private func resolveMaster(sentinels: [RedisAddress], name: String) throws(RedisError) -> RedisAddress {
        if let master, connections[master]?.isConnected == true { return master }
        // Resolved again on every reconnect: the old master may have been demoted meanwhile.
        master = nil
        var lastError = "no Sentinel answered"
        for sentinel in sentinels {
            let reply: RedisReply
            do {
                reply = try sentinelConnection(sentinel).send(RedisCommand("SENTINEL", "get-master-addr-by-name", name))
            } catch {
                lastError = "\(sentinel): \(error)"
                continue
            }
            guard case .array(let fields) = reply, fields.count == 2, let host = fields[0].text, let port = fields[1].text.flatMap({ Int($0) }) else {
                lastError = "\(sentinel) knows no master named \(name)"
                continue
            }
            let candidate = RedisAddress.tcp(host: host, port: port)
            do {
                let role = try connection(candidate).send(RedisCommand("ROLE"))
                guard case .array(let parts) = role, parts.first?.text == "master" else {
                    lastError = "\(candidate), named by \(sentinel), is not a master (yet)"
                    connections[candidate]?.close()
                    continue
                }
                if case .array(let replicas) = parts.count >= 3 ? parts[2] : .null {
                    noteReplicas(replicas.count, of: candidate)
                }
            } catch {
                lastError = "\(candidate), named by \(sentinel): \(error)"
                continue
            }
            statistics.masterResolutions += 1
            master = candidate
            return candidate
        }
        throw .connectFailed("Sentinel: no master for \(name): \(lastError)")
    }

    private func sentinelConnection(_ address: RedisAddress) -> RedisConnection {
        if let existing = sentinelConnections[address] { return existing }
        var endpoint = configuration.endpoint(address)
        endpoint.username = nil
        endpoint.password = nil
        endpoint.database = 0
        let created = RedisConnection(endpoint: endpoint, tlsContext: try? sharedTLSContext())
        sentinelConnections[address] = created
        return created
    }

    /// In Sentinel mode, an answer that says this node is no (ready) master makes the next
    /// command resolve the master again.
    private func followSentinelAnswers(_ replies: [RedisReply], from address: RedisAddress) throws(RedisError) -> [RedisReply] {
        guard case .sentinel = configuration.topology else { return replies }
        if replies.contains(where: { ["READONLY", "LOADING", "MASTERDOWN"].contains($0.serverError?.code ?? "") }) {
            forgetMasterIfSentinel(address)
        }
        return replies
    }

    private func forgetMasterIfSentinel(_ address: RedisAddress) {
        guard case .sentinel = configuration.topology, master == address else { return }
        connections[address]?.close()
        master = nil
    }

    // MARK: - Replicas

    /// Remembers that `address` took a command (maybe a write) on its current connection.
    private func noteWrite(_ address: RedisAddress) {
        let carrier = connections[address]?.connectionsOpened ?? -1
        if let earlier = writtenNodes[address], earlier != carrier {
            writtenNodes[address] = -1
        } else {
            writtenNodes[address] = carrier
        }
    }

    /// Whether an `auto` wait asks `node` for a replica: yes once any node was seen with one;
    /// otherwise as the cluster map (reloaded at most every 5 s for this) or `ROLE` (cached 5 s)
    /// shows it now.
    private func expectsReplicas(_ node: RedisAddress) throws(RedisError) -> Bool {
        if replicatedDeployment { return true }
        if case .cluster = configuration.topology {
            let now = Deadline.now()
            if slotMap.replicas(of: node) == 0, now &- lastReplicaCheck > 5_000_000_000 {
                lastReplicaCheck = now
                try? refreshSlotMap()
            }
            return slotMap.replicas(of: node) > 0 || replicatedDeployment
        }
        return try replicaCount(of: node) > 0
    }

    /// Replicas of `node` from `ROLE` (cached for 5 s).
    private func replicaCount(of node: RedisAddress) throws(RedisError) -> Int {
        if let cached = replicaCounts[node], Deadline.now() &- cached.checkedAt < 5_000_000_000 { return cached.count }
        let role = try connection(node).send(RedisCommand("ROLE"))
        var count = 0
        if case .array(let parts) = role, parts.first?.text == "master", parts.count >= 3, case .array(let replicas) = parts[2] {
            count = replicas.count
        }
        noteReplicas(count, of: node)
        return count
    }

    private func noteReplicas(_ count: Int, of node: RedisAddress) {
        replicaCounts[node] = (count, Deadline.now())
        if count > 0 { replicatedDeployment = true }
    }
}

/// How many replicas confirmed the writes `waitForReplicas` asked about.
public struct ReplicationOutcome: Equatable, Sendable {
    /// Replicas asked for (0: no node had replicas, nothing was waited for).
    public let required: Int
    public let acknowledged: Int

    public init(required: Int, acknowledged: Int) {
        self.required = required
        self.acknowledged = acknowledged
    }

    public var isConfirmed: Bool { acknowledged >= required }
    var shortfall: Int { max(0, required - acknowledged) }
}

/// Counters of routing events, for logs and metrics.
public struct RedisClientStatistics: Equatable, Sendable {
    public var moved = 0
    public var asked = 0
    public var tryAgains = 0
    public var slotMapRefreshes = 0
    public var masterResolutions = 0
    public var waits = 0
    public var waitShortfalls = 0

    public init() {}
}
