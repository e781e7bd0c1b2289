import Glibc
import Synchronization

/// A client for one Redis deployment — a single node, a Redis Cluster, or the master that
/// Redis Sentinel names — used from one thread (one per worker). Every command carries the key
/// it touches (if any) so it goes to the node that owns the key:
///
/// - **Cluster**: the slot map comes from `CLUSTER SLOTS` (loaded lazily, refreshed after a
///   `MOVED` or a node failure, at most every 100 ms); `MOVED` updates the map and resends,
///   `ASK` resends once to the named node after `ASKING`; `TRYAGAIN` and `CLUSTERDOWN` are
///   retried after short pauses until the command timeout; nodes that left the map are dropped.
///   Connections are made per node, lazily.
/// - **Sentinel**: the master is asked of the Sentinels (`SENTINEL get-master-addr-by-name`;
///   the one that answered last first, those that failed last) and checked with `ROLE`; it is
///   resolved again for every new connection, after a `READONLY`, `LOADING` or `MASTERDOWN`
///   answer (then the command is resent once), and when the Sentinels, asked at most once a
///   second, name another master — so a failover or a switch-over is followed without
///   restarting anything.
///
/// A command is never resent after it may have reached a server, except after `MOVED`/`ASK`/
/// `TRYAGAIN`/`CLUSTERDOWN` and `READONLY`/`LOADING`/`MASTERDOWN` answers, which mean it did
/// not run; a refused connect (nothing sent) is retried on a refreshed cluster map or a new
/// answer of the Sentinels.
///
/// Writes are remembered per node, so `waitForReplicas` can ask each node that took a write
/// since the last call to confirm it on its replicas (`WAIT`).
public final class RedisClient {
    public let configuration: RedisConfiguration
    private var tlsContext: TLSContext?
    private var connections: [RedisAddress: RedisConnection] = [:]
    /// A single-node deployment's one connection, kept at hand: the hot path then makes no
    /// dictionary look-up.
    private var singleNode: RedisConnection?
    private var sentinelConnections: [RedisAddress: RedisConnection] = [:]
    private var slotMap = ClusterSlotMap()
    private var slotMapStale = true
    private var lastSlotMapRefresh: UInt64 = 0
    /// Cluster nodes whose last command or connect failed at the connection level: a map
    /// refresh asks them last, so a dead or frozen master does not hold up every refresh.
    private var suspects: Set<RedisAddress> = []
    private var master: RedisAddress?
    /// The master the Sentinels named and `ROLE` confirmed last: used, if still a master, when
    /// no Sentinel answers at all.
    private var lastConfirmedMaster: RedisAddress?
    /// When the Sentinels last confirmed `master`.
    private var masterCheckedAt: UInt64 = 0
    /// Sentinels in the order they are asked.
    private var sentinelOrder: [RedisAddress] = []
    /// How often the master in use is checked against the Sentinels (one round trip to a
    /// Sentinel, at most once a second per client).
    static let masterRecheckNanoseconds: UInt64 = 1_000_000_000
    /// Nodes written to since the last `waitForReplicas`, with the connection (its
    /// `connectionsOpened`) that carried the writes; `-1` when several did.
    private var writtenNodes: [RedisAddress: Int] = [:]
    /// The node and connection noted last in `writtenNodes`: noting them again changes nothing,
    /// so the usual case (every command to the same node) skips the look-up.
    private var lastNoted: (address: RedisAddress, carrier: Int)?
    private var replicaCounts: [RedisAddress: (count: Int, checkedAt: UInt64)] = [:]
    /// Whether any node of the deployment was ever seen with a replica (sticky: a replica that
    /// is down later makes a wait fall short, it does not make waiting pointless).
    private var replicatedDeployment = false
    /// When a cluster map showing no replica for a written node was last reloaded for `WAIT`.
    private var lastReplicaCheck: UInt64 = 0
    /// A command buffer reused by `run(_:keyCount:routingKey:_:)`, the hot path.
    private var scratch = RedisCommand(reservingBytes: 256, arguments: 12)
    /// What happened, for metrics: readable from any thread while this client works.
    public let counters = RedisClientCounters()
    /// Routing events so far (a view of `counters`, for tests and logs).
    public var statistics: RedisClientStatistics { RedisClientStatistics(counters) }

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
        var replies: [RedisReply] = []
        replies.reserveCapacity(items.count)
        for result in try pipelineEach(items) { replies.append(try result.get()) }
        return replies
    }

    /// `pipeline`, with a result per command: on a cluster a node that fails fails only the
    /// commands sent to it (the others' replies stand); on one server, or behind Sentinel, a
    /// failed connection fails every command. Throws only for an invalid command.
    public func pipelineEach(_ items: [(command: RedisCommand, key: String?)]) throws(RedisError) -> [Result<RedisReply, RedisError>] {
        guard !items.isEmpty else { return [] }
        guard items.allSatisfy({ $0.command.count > 0 }) else { throw .invalidCommand }
        switch configuration.topology {
        case .single(let address):
            do {
                let connection = try singleConnection(address)
                let replies = try connection.pipeline(items.map(\.command))
                noteWrite(address, carrier: connection.connectionsOpened)
                return replies.map { .success($0) }
            } catch {
                return items.map { _ in .failure(error) }
            }
        case .sentinel(let sentinels, let name):
            return sentinelExecuteEach(items.map(\.command), sentinels: sentinels, name: name)
        case .cluster:
            return clusterPipeline(items)
        }
    }

    /// Runs `script` (`EVALSHA`, `EVAL` once after `NOSCRIPT`) on the node owning `routingKey`;
    /// `addArguments` appends the keys, then the other arguments. A server error reply other than
    /// `NOSCRIPT` is thrown as `.server`. Builds the command in a reused buffer (the hot path);
    /// `routingKey` is only evaluated on a cluster, the one topology that routes by key, so a
    /// caller that writes the key straight into the command builds no key string otherwise.
    public func run(_ script: RedisScript, keyCount: Int, routingKey: @autoclosure () -> String,
                    _ addArguments: (inout RedisCommand) -> Void) throws(RedisError) -> RedisReply {
        var command = scratch
        scratch = RedisCommand()
        command.removeAll()
        command.append("EVALSHA")
        command.append(script.sha1)
        command.append(keyCount)
        addArguments(&command)
        let sent = Result { () throws(RedisError) in try execute(command, key: routingKey()) }
        scratch = command
        let reply = try sent.get()
        if let error = reply.serverError {
            guard error.code == "NOSCRIPT" else { throw .server(error) }
            RedisClientCounters.bump(counters.scriptReloads)
            var full = RedisCommand(reservingBytes: script.source.utf8.count + 160, arguments: 8)
            full.append("EVAL")
            full.append(script.source)
            full.append(keyCount)
            addArguments(&full)
            let retried = try execute(full, key: routingKey())
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
        var replies: [RedisReply] = []
        replies.reserveCapacity(calls.count)
        for result in try runPipelinedEach(calls) { replies.append(try result.get()) }
        return replies
    }

    /// `runPipelined`, with a result per call (see `pipelineEach`).
    public func runPipelinedEach(_ calls: [RedisScriptCall]) throws(RedisError) -> [Result<RedisReply, RedisError>] {
        var results = try pipelineEach(calls.map { ($0.command("EVALSHA", $0.script.sha1), $0.routingKey) })
        let missing = results.indices.filter { (try? results[$0].get())?.serverError?.code == "NOSCRIPT" }
        guard !missing.isEmpty else { return results }
        RedisClientCounters.bump(counters.scriptReloads, by: missing.count)
        let retried = try pipelineEach(missing.map { (calls[$0].command("EVAL", calls[$0].script.source), calls[$0].routingKey) })
        for (index, result) in zip(missing, retried) { results[index] = result }
        return results
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
        lastNoted = nil
        // How many replicas each node must show (this may reload the map or ask ROLE) …
        var asks: [(node: RedisAddress, carrier: Int, required: Int)] = []
        for (node, carrier) in nodes {
            let required: Int
            if let replicas { required = replicas } else { required = try expectsReplicas(node) ? 1 : 0 }
            if required > 0 { asks.append((node, carrier, required)) }
        }
        // … then every WAIT is written before any is read, so several nodes cost one timeout,
        // not one each. A connection other than the one that carried the writes (a reconnect
        // in between) could not speak for them: those count as unacknowledged.
        var acknowledged = [Int64](repeating: 0, count: asks.count)
        var waiting: [(index: Int, connection: RedisConnection)] = []
        do throws(RedisError) {
            for (index, ask) in asks.enumerated() {
                let connection = try self.connection(ask.node)
                guard ask.carrier >= 0, connection.hasUsableTransport(), connection.connectionsOpened == ask.carrier else { continue }
                try connection.write([RedisCommand("WAIT", String(ask.required), String(timeoutMilliseconds))])
                waiting.append((index, connection))
            }
            while let (index, connection) = waiting.first {
                let reply = try connection.readReplies(1)[0]
                waiting.removeFirst()
                guard let count = reply.integer else {
                    throw reply.serverError.map { RedisError.server($0) } ?? RedisError.unexpectedReply("WAIT answered \(reply)")
                }
                acknowledged[index] = count
            }
        } catch {
            // Replies still due on other connections would be read as the next command's.
            for (_, connection) in waiting { connection.close() }
            throw error
        }
        var outcome = ReplicationOutcome(required: 0, acknowledged: 0)
        for (index, ask) in asks.enumerated() {
            RedisClientCounters.bump(counters.waits)
            if acknowledged[index] < ask.required { RedisClientCounters.bump(counters.waitShortfalls) }
            let candidate = ReplicationOutcome(required: ask.required, acknowledged: Int(acknowledged[index]))
            if outcome.required == 0 || candidate.shortfall > outcome.shortfall { outcome = candidate }
        }
        return outcome
    }

    /// `PING` to every master the client knows (all of a cluster's), throwing when one does not
    /// answer `PONG`. On a cluster a failure is checked once more on a freshly loaded map: the
    /// map in use may predate a failover, and a client that only checks health (`/healthz`)
    /// would otherwise never learn of it.
    public func checkHealth() throws(RedisError) {
        switch configuration.topology {
        case .cluster:
            do {
                try checkClusterHealth()
            } catch {
                slotMapStale = true
                try refreshSlotMap(force: true)
                try checkClusterHealth()
            }
        default:
            try ping(try targetForUnkeyed())
        }
    }

    private func checkClusterHealth() throws(RedisError) {
        if slotMapStale { try refreshSlotMap() }
        guard slotMap.coversAllSlots else { throw .server(RedisServerError(message: "CLUSTERDOWN not every slot is served")) }
        for target in slotMap.masters {
            do {
                try ping(target)
            } catch {
                slotMapStale = true
                suspects.insert(target)
                throw error
            }
        }
    }

    private func ping(_ target: RedisAddress) throws(RedisError) {
        let reply = try connection(target).send(RedisCommand("PING"))
        guard reply.text == "PONG" else { throw reply.serverError.map { .server($0) } ?? .unexpectedReply("PING answered \(reply)") }
    }

    /// What each configured Sentinel says of the master name (for `check-config`): the
    /// master's address, `nil` when it knows no master by that name, or why it did not answer.
    /// Empty unless the deployment is behind Sentinels.
    public func sentinelAnswers() -> [(sentinel: RedisAddress, answer: Result<RedisAddress?, RedisError>)] {
        guard case .sentinel(let sentinels, let name) = configuration.topology else { return [] }
        return sentinels.map { sentinel in
            (sentinel, Result { () throws(RedisError) -> RedisAddress? in try askSentinel(sentinel, name) })
        }
    }

    /// Closes every connection.
    public func close() {
        for connection in connections.values { connection.close() }
        for connection in sentinelConnections.values { connection.close() }
    }

    // MARK: - Routing

    private func execute(_ command: RedisCommand, key: @autoclosure () -> String?) throws(RedisError) -> RedisReply {
        switch configuration.topology {
        case .single(let address):
            let connection = try singleConnection(address)
            let reply = try connection.send(command)
            noteWrite(address, carrier: connection.connectionsOpened)
            return reply
        case .sentinel(let sentinels, let name):
            return try sentinelExecute([command], sentinels: sentinels, name: name)[0]
        case .cluster:
            return try clusterExecute(command, slot: key().map { HashSlot.of($0) })
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

    private func singleConnection(_ address: RedisAddress) throws(RedisError) -> RedisConnection {
        if let singleNode { return singleNode }
        let created = try connection(address)
        singleNode = created
        return created
    }

    private func connection(_ address: RedisAddress) throws(RedisError) -> RedisConnection {
        if let existing = connections[address] { return existing }
        let created = RedisConnection(endpoint: configuration.endpoint(address), tlsContext: try sharedTLSContext(), counters: counters)
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

    /// Bumped by any client of the process whose map changed; a client that sees it move takes
    /// the map that client loaded (`sharedSlotMaps`, per cluster), or loads its own.
    private static let topologyGeneration = Atomic<Int>(0)
    /// The newest map each cluster's clients loaded (by seed list), with the generation it
    /// was published under: taking it costs no `CLUSTER SLOTS`, and cannot ask first the node
    /// just replaced (which, frozen, would cost a timeout).
    private static let sharedSlotMaps = Mutex<[[RedisAddress]: (generation: Int, map: ClusterSlotMap)]>([:])
    private var seenTopologyGeneration = 0

    private func noticeTopologyChange() {
        let generation = Self.topologyGeneration.load(ordering: .relaxed)
        guard generation != seenTopologyGeneration else { return }
        seenTopologyGeneration = generation
        let seeds = seedAddresses
        if let shared = Self.sharedSlotMaps.withLock({ $0[seeds] }), shared.generation == generation {
            if shared.map != slotMap { adopt(shared.map) }
        } else {
            slotMapStale = true
        }
    }

    /// Takes `map` as this client's, dropping connections to nodes no longer in it.
    private func adopt(_ map: ClusterSlotMap) {
        slotMap = map
        slotMapStale = false
        if map.hasReplicas { replicatedDeployment = true }
        for (known, connection) in connections where !map.masters.contains(known) {
            connection.close()
            connections[known] = nil
        }
    }

    private func clusterExecute(_ command: RedisCommand, slot: Int?) throws(RedisError) -> RedisReply {
        noticeTopologyChange()
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
            noteWrite(target, carrier: connection.connectionsOpened)
            if !suspects.isEmpty { suspects.remove(target) }
            guard let error = reply.serverError else { return reply }
            if let redirect = ClusterRedirect(error, answeredBy: target), redirects < 5 || !deadline.hasPassed {
                redirects += 1
                // While a slot changes hands its two nodes can point at each other for a moment
                // (the source already updated, the target still importing): past a few
                // redirections, pause between them, until the command timeout.
                if redirects > 5 { usleep(UInt32(min(10, max(1, deadline.remainingMilliseconds))) * 1000) }
                switch redirect.kind {
                case .moved:
                    RedisClientCounters.bump(counters.moved)
                    slotMap.move(redirect.slot, to: redirect.address)
                    slotMapStale = true
                    seenTopologyGeneration = Self.topologyGeneration.add(1, ordering: .relaxed).newValue
                    asking = nil
                case .ask:
                    RedisClientCounters.bump(counters.asked)
                    asking = redirect.address
                }
                continue
            }
            if error.code == "TRYAGAIN" || error.code == "CLUSTERDOWN", !deadline.hasPassed {
                RedisClientCounters.bump(counters.clusterRetries)
                if error.code == "CLUSTERDOWN" { slotMapStale = true }
                usleep(UInt32(min(25, max(1, deadline.remainingMilliseconds))) * 1000)
                // TRYAGAIN from the node a slot is moving to (after ASKING): some of the
                // command's keys have moved, some not yet; ask it again, not the source, which
                // would only send the command back here.
                if error.code == "CLUSTERDOWN" { asking = nil }
                continue
            }
            return reply
        }
    }

    /// Groups commands by node, writes every group, then reads every group; replies that are
    /// redirections or "try again" are resent one by one, and so are the commands of a node
    /// that refused the connection (nothing was sent). A node that fails after its commands
    /// were sent fails those commands alone (they may or may not have run): the other nodes'
    /// replies stand, so one node down fails only the requests whose keys it holds.
    private func clusterPipeline(_ items: [(command: RedisCommand, key: String?)]) -> [Result<RedisReply, RedisError>] {
        noticeTopologyChange()
        if slotMapStale { try? refreshSlotMap() }
        var results = [Result<RedisReply, RedisError>?](repeating: nil, count: items.count)
        var groups: [RedisAddress: [Int]] = [:]
        var order: [RedisAddress] = []
        for (index, item) in items.enumerated() {
            guard let target = item.key.flatMap({ slotMap.owner(of: HashSlot.of($0)) }) ?? slotMap.masters.first ?? seedAddresses.first else {
                results[index] = .failure(.connectFailed("no cluster node known"))
                continue
            }
            if groups[target] == nil { order.append(target) }
            groups[target, default: []].append(index)
        }
        var resend: [Int] = []
        var written: [RedisAddress] = []
        for target in order {
            let indices = groups[target, default: []]
            do {
                try connection(target).write(indices.map { items[$0].command })
                written.append(target)
            } catch {
                slotMapStale = true
                suspects.insert(target)
                if case .connectFailed = error {
                    resend += indices
                } else {
                    for index in indices { results[index] = .failure(error) }
                }
            }
        }
        for target in written {
            let indices = groups[target, default: []]
            do {
                let connection = try self.connection(target)
                for (index, reply) in zip(indices, try connection.readReplies(indices.count)) { results[index] = .success(reply) }
                noteWrite(target, carrier: connection.connectionsOpened)
                if !suspects.isEmpty { suspects.remove(target) }
            } catch {
                // Its replies were not all read: closed, or its next command would read them.
                connections[target]?.close()
                slotMapStale = true
                suspects.insert(target)
                for index in indices { results[index] = .failure(error) }
            }
        }
        for index in items.indices {
            if case .success(let reply) = results[index] {
                guard let error = reply.serverError, ["MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"].contains(error.code) else { continue }
            } else if !resend.contains(index) {
                continue
            }
            results[index] = Result { () throws(RedisError) in
                try clusterExecute(items[index].command, slot: items[index].key.map { HashSlot.of($0) })
            }
        }
        return results.map { $0 ?? .failure(.connectFailed("no cluster node known")) }
    }

    private var seedAddresses: [RedisAddress] {
        if case .cluster(let seeds) = configuration.topology { return seeds }
        return []
    }

    /// Loads the slot map from the first node that answers (known masters, then the seeds;
    /// nodes that failed last time after all others) and drops connections to nodes no longer
    /// in it. At most every 100 ms unless `force`d.
    private func refreshSlotMap(force: Bool = false) throws(RedisError) {
        let now = Deadline.now()
        if !force, !slotMap.masters.isEmpty, now &- lastSlotMapRefresh < 100_000_000 { return }
        lastSlotMapRefresh = now
        var candidates = slotMap.masters
        for seed in seedAddresses where !candidates.contains(seed) { candidates.append(seed) }
        candidates = candidates.filter { !suspects.contains($0) } + candidates.filter { suspects.contains($0) }
        var lastError = RedisError.connectFailed("no cluster node answered CLUSTER SLOTS")
        // A node that refused the credentials says more than one that is down: the caller
        // (check-config, the log) must learn of a password or ACL out of step.
        var refusal: RedisServerError?
        for address in candidates {
            do {
                let reply = try connection(address).send(RedisCommand("CLUSTER", "SLOTS"))
                guard let map = ClusterSlotMap(clusterSlots: reply, answeredBy: address) else {
                    lastError = reply.serverError.map { .server($0) } ?? .unexpectedReply("CLUSTER SLOTS from \(address)")
                    if let error = reply.serverError, error.refusesCredentials { refusal = error }
                    continue
                }
                // A new owner of some slot (a failover, a slot moved): every other client of the
                // process loads the map again before its next command, instead of sending to a
                // master that was replaced, which a worker idle meanwhile would still do (and a
                // paused old master, waking, would answer from its stale copy).
                if !slotMap.masters.isEmpty, map != slotMap {
                    let seeds = seedAddresses
                    seenTopologyGeneration = Self.sharedSlotMaps.withLock { maps in
                        let generation = Self.topologyGeneration.add(1, ordering: .relaxed).newValue
                        maps[seeds] = (generation, map)
                        return generation
                    }
                }
                adopt(map)
                suspects.remove(address)
                RedisClientCounters.bump(counters.slotMapRefreshes)
                suspects.formIntersection(candidates)
                return
            } catch {
                suspects.insert(address)
                lastError = error
                if case .server(let error) = error, error.refusesCredentials { refusal = error }
            }
        }
        if let refusal { throw .server(refusal) }
        throw lastError
    }

    // MARK: - Sentinel

    /// Sends `commands` (one, or a pipeline) to the master the Sentinels name. When that node
    /// turns out not to be a ready master — the connect is refused (nothing sent), or it answers
    /// `READONLY`, `LOADING` or `MASTERDOWN` (that command did not run: a replica takes no
    /// write) — the Sentinels are asked again and the commands that did not run resent, once.
    /// Only those: a master demoted half way through a pipeline ran the commands before, and
    /// sending an increment twice would count it twice.
    private func sentinelExecute(_ commands: [RedisCommand], sentinels: [RedisAddress], name: String) throws(RedisError) -> [RedisReply] {
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for result in sentinelExecuteEach(commands, sentinels: sentinels, name: name) { replies.append(try result.get()) }
        return replies
    }

    /// `sentinelExecute` with a result per command: when the resend fails, the commands that ran
    /// the first time keep their replies (a visit counted is never reported as failed).
    private func sentinelExecuteEach(_ commands: [RedisCommand], sentinels: [RedisAddress], name: String) -> [Result<RedisReply, RedisError>] {
        var resent = false
        var replies = [RedisReply](repeating: .null, count: commands.count)
        var pending = Array(commands.indices)
        func answered(failing error: RedisError? = nil) -> [Result<RedisReply, RedisError>] {
            let failed = Set(error == nil ? [] : pending)
            return commands.indices.map { index in
                if let error, failed.contains(index) { return .failure(error) }
                return .success(replies[index])
            }
        }
        while true {
            let address: RedisAddress
            let answeredNow: [RedisReply]
            do {
                address = try resolveMaster(sentinels: sentinels, name: name)
            } catch {
                return answered(failing: error)
            }
            do {
                let connection = try self.connection(address)
                answeredNow = pending.count == 1 ? [try connection.send(commands[pending[0]])]
                    : try connection.pipeline(pending.map { commands[$0] })
            } catch {
                forgetMaster(address)
                if case .connectFailed = error, !resent {
                    resent = true
                    continue
                }
                return answered(failing: error)
            }
            for (index, reply) in zip(pending, answeredNow) { replies[index] = reply }
            let refused = pending.filter { Self.notMasterCodes.contains(replies[$0].serverError?.code ?? "") }
            if refused.count < pending.count { noteWrite(address) }
            guard !refused.isEmpty else { return answered() }
            forgetMaster(address)
            guard !resent else { return answered() }
            resent = true
            pending = refused
        }
    }

    /// Answers of a node that is no (ready) master; the command did not run.
    private static let notMasterCodes: Set<String> = ["READONLY", "LOADING", "MASTERDOWN"]

    /// The master: the one in use while its connection lives (checked against the Sentinels
    /// at most every `masterRecheckNanoseconds`), otherwise asked of the Sentinels — the one
    /// that answered last first, those that failed last — and confirmed by `ROLE`.
    private func resolveMaster(sentinels: [RedisAddress], name: String) throws(RedisError) -> RedisAddress {
        if sentinelOrder.isEmpty { sentinelOrder = sentinels }
        if let master, connections[master]?.hasUsableTransport() == true {
            let now = Deadline.now()
            if now &- masterCheckedAt < Self.masterRecheckNanoseconds { return master }
            // A switch-over leaves the old master writable until Sentinel demotes it (its INFO
            // period is 10 s): writes sent there meanwhile are lost, so ask again now and then.
            // One Sentinel is asked (a dead one then costs one request a second at most, and
            // moves to the back); one that does not answer leaves the master in use.
            masterCheckedAt = now
            guard let preferred = sentinelOrder.first, let named = (try? askSentinel(preferred, name)) ?? nil,
                  named != master else { return master }
        }
        // Resolved again on every new connection: the old master may have been demoted meanwhile.
        if let master { connections[master]?.close() }
        master = nil
        var lastError = "no Sentinel answered"
        // A Sentinel or master that refused the credentials: named as such if none served (a
        // password or ACL out of step is a configuration error, not an outage).
        var refusal: RedisServerError?
        var anySentinelAnswered = false
        for sentinel in sentinelOrder {
            let answer: RedisAddress?
            do {
                answer = try askSentinel(sentinel, name)
                anySentinelAnswered = true
            } catch {
                lastError = "\(sentinel): \(error)"
                if case .server(let error) = error, error.refusesCredentials {
                    refusal = RedisServerError(message: error.message + " (from the Sentinel at \(sentinel))", fromSentinel: true)
                }
                continue
            }
            guard let candidate = answer else {
                lastError = "\(sentinel) knows no master named \(name)"
                continue
            }
            do {
                let role = try connection(candidate).send(RedisCommand("ROLE"))
                guard case .array(let parts) = role, parts.first?.text == "master" else {
                    if let error = role.serverError, error.refusesCredentials {
                        refusal = RedisServerError(message: error.message + " (from the master at \(candidate))")
                    }
                    lastError = "\(candidate), named by \(sentinel), is not a master (yet)"
                    connections[candidate]?.close()
                    continue
                }
                if case .array(let replicas) = parts.count >= 3 ? parts[2] : .null {
                    noteReplicas(replicas.count, of: candidate)
                }
            } catch {
                lastError = "\(candidate), named by \(sentinel): \(error)"
                // A refused database (SELECT) is a configuration error too, named as such.
                if case .server(let error) = error, error.refusesCredentials || error.refusesDatabase {
                    refusal = RedisServerError(message: error.message + " (from the master at \(candidate))")
                }
                continue
            }
            if !replicatedDeployment {
                // ROLE lists connected replicas only; the Sentinel also knows those that are
                // down, which a wait must then miss rather than skip.
                if case .array(let known) = (try? sentinelConnection(sentinel).send(RedisCommand("SENTINEL", "REPLICAS", name))) ?? .null,
                   !known.isEmpty {
                    replicatedDeployment = true
                }
            }
            RedisClientCounters.bump(counters.masterResolutions)
            master = candidate
            lastConfirmedMaster = candidate
            masterCheckedAt = Deadline.now()
            return candidate
        }
        if let refusal { throw .server(refusal) }
        // No Sentinel answered at all (all down or frozen: their outage, not the data's). The
        // master in use stays in use while its connection lives; after a reconnect, the one
        // confirmed last still serves if `ROLE` says it is a master *with a replica connected*.
        // Without that proof it may have been replaced: a host cut off from the Sentinels (and
        // so, usually, they promoted its replica, which dropped its link to it), or a former
        // master restarted while they were down; writes there (logouts, revocations) would be
        // lost when it resyncs, so the answer stays "no master" (503).
        if !anySentinelAnswered, let fallback = lastConfirmedMaster,
           case .array(let parts) = (try? connection(fallback).send(RedisCommand("ROLE"))) ?? .null, parts.first?.text == "master",
           parts.count >= 3, case .array(let replicas) = parts[2], !replicas.isEmpty {
            RedisClientCounters.bump(counters.masterResolutions)
            master = fallback
            masterCheckedAt = Deadline.now()
            return fallback
        }
        throw .connectFailed("Sentinel: no master for \(name): \(lastError)")
    }

    /// `SENTINEL get-master-addr-by-name` of one Sentinel (`nil`: it knows no such master). A
    /// Sentinel that answers moves to the front of `sentinelOrder`, one that fails to the back.
    private func askSentinel(_ sentinel: RedisAddress, _ name: String) throws(RedisError) -> RedisAddress? {
        let reply: RedisReply
        RedisClientCounters.bump(counters.sentinelQueries)
        do throws(RedisError) {
            reply = try sentinelConnection(sentinel).send(RedisCommand("SENTINEL", "get-master-addr-by-name", name))
            // An error answer (NOAUTH: the Sentinel wants a password) is this Sentinel failing,
            // not a Sentinel that knows no such master.
            if case .error(let refusal) = reply { throw RedisError.server(refusal) }
        } catch {
            sentinelOrder.removeAll { $0 == sentinel }
            sentinelOrder.append(sentinel)
            throw error
        }
        if sentinelOrder.first != sentinel {
            sentinelOrder.removeAll { $0 == sentinel }
            sentinelOrder.insert(sentinel, at: 0)
        }
        guard case .array(let fields) = reply, fields.count == 2, let host = fields[0].text,
              let port = fields[1].text.flatMap({ Int($0) }) else { return nil }
        return .tcp(host: host, port: port)
    }

    private func sentinelConnection(_ address: RedisAddress) -> RedisConnection {
        if let existing = sentinelConnections[address] { return existing }
        var endpoint = configuration.endpoint(address)
        endpoint.username = configuration.sentinelPassword == nil ? nil : configuration.sentinelUsername
        endpoint.password = configuration.sentinelPassword
        endpoint.passwordSource = nil  // the data nodes' password, never sent to a Sentinel
        endpoint.database = 0
        let created = RedisConnection(endpoint: endpoint, tlsContext: try? sharedTLSContext(), counters: counters, countsRoundTrips: false)
        sentinelConnections[address] = created
        return created
    }

    /// Forgets the master in use (and closes its connection), so the next command resolves it.
    private func forgetMaster(_ address: RedisAddress) {
        guard master == address else { return }
        connections[address]?.close()
        master = nil
    }

    // MARK: - Replicas

    /// Remembers that `address` took a command (maybe a write) on its current connection.
    private func noteWrite(_ address: RedisAddress) {
        noteWrite(address, carrier: connections[address]?.connectionsOpened ?? -1)
    }

    /// Remembers that `address` took a command on the connection numbered `carrier` (its
    /// `connectionsOpened` after the command).
    private func noteWrite(_ address: RedisAddress, carrier: Int) {
        if let last = lastNoted, last.carrier == carrier, last.address == address { return }
        lastNoted = (address, carrier)
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

/// Routing events of one client, as counted so far.
public struct RedisClientStatistics: Equatable, Sendable {
    public var moved = 0
    public var asked = 0
    /// `TRYAGAIN` and `CLUSTERDOWN` answers waited out.
    public var tryAgains = 0
    public var slotMapRefreshes = 0
    public var masterResolutions = 0
    /// `SENTINEL get-master-addr-by-name` sent (resolutions and the once-a-second checks).
    public var sentinelQueries = 0
    public var waits = 0
    public var waitShortfalls = 0

    public init() {}

    init(_ counters: RedisClientCounters) {
        moved = counters.moved.load(ordering: .relaxed)
        asked = counters.asked.load(ordering: .relaxed)
        tryAgains = counters.clusterRetries.load(ordering: .relaxed)
        slotMapRefreshes = counters.slotMapRefreshes.load(ordering: .relaxed)
        masterResolutions = counters.masterResolutions.load(ordering: .relaxed)
        sentinelQueries = counters.sentinelQueries.load(ordering: .relaxed)
        waits = counters.waits.load(ordering: .relaxed)
        waitShortfalls = counters.waitShortfalls.load(ordering: .relaxed)
    }
}
