/// Which master serves each of the 16384 slots, and how many replicas it has, as `CLUSTER SLOTS`
/// reported it (updated in place by `MOVED`). Pure data: testable without a server.
package struct ClusterSlotMap: Equatable, Sendable {
    /// Index into `masters` per slot; -1 when no node serves it.
    private var owners: [Int16]
    package private(set) var masters: [RedisAddress]
    /// Replicas known per master (same order as `masters`).
    private(set) var replicaCounts: [Int]

    init() {
        owners = [Int16](repeating: -1, count: HashSlot.count)
        masters = []
        replicaCounts = []
    }

    /// Parses a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, …], [replica…]…]…]`.
    /// An empty host (a node that does not know its own address) means the node that answered.
    package init?(clusterSlots reply: RedisReply, answeredBy: RedisAddress) {
        self.init()
        guard case .array(let ranges) = reply else { return nil }
        for range in ranges {
            guard case .array(let fields) = range, fields.count >= 3, let start = fields[0].integer, let end = fields[1].integer,
                  (0..<Int64(HashSlot.count)).contains(start), (start...Int64(HashSlot.count - 1)).contains(end),
                  let master = Self.node(fields[2], answeredBy: answeredBy) else { return nil }
            let index = masterIndex(master)
            replicaCounts[index] = max(replicaCounts[index], fields.count - 3)
            for slot in Int(start)...Int(end) { owners[slot] = Int16(index) }
        }
        guard !masters.isEmpty else { return nil }
    }

    /// The master serving `slot`, if known.
    package func owner(of slot: Int) -> RedisAddress? {
        let index = Int(owners[slot])
        return index >= 0 ? masters[index] : nil
    }

    /// Replicas known for `master` (0 when unknown).
    package func replicas(of master: RedisAddress) -> Int {
        masters.firstIndex(of: master).map { replicaCounts[$0] } ?? 0
    }

    /// Whether any master has a replica.
    var hasReplicas: Bool { replicaCounts.contains { $0 > 0 } }

    /// Records a `MOVED`: `slot` is now served by `address`.
    package mutating func move(_ slot: Int, to address: RedisAddress) {
        owners[slot] = Int16(masterIndex(address))
    }

    /// Whether every slot has an owner.
    package var coversAllSlots: Bool { !owners.contains(-1) }

    private mutating func masterIndex(_ address: RedisAddress) -> Int {
        if let index = masters.firstIndex(of: address) { return index }
        masters.append(address)
        replicaCounts.append(0)
        return masters.count - 1
    }

    private static func node(_ reply: RedisReply, answeredBy: RedisAddress) -> RedisAddress? {
        guard case .array(let fields) = reply, fields.count >= 2, let port = fields[1].integer, (1...65535).contains(port) else { return nil }
        let host = fields[0].text ?? ""
        if host.isEmpty || host == "?" {
            guard case .tcp(let answeringHost, _) = answeredBy else { return nil }
            return .tcp(host: answeringHost, port: Int(port))
        }
        return .tcp(host: host, port: Int(port))
    }
}

/// A cluster redirection in an error reply: `MOVED <slot> <host:port>` or `ASK <slot> <host:port>`.
package struct ClusterRedirect: Equatable, Sendable {
    package enum Kind: Equatable, Sendable { case moved, ask }
    package let kind: Kind
    package let slot: Int
    package let address: RedisAddress

    package init(kind: Kind, slot: Int, address: RedisAddress) {
        self.kind = kind
        self.slot = slot
        self.address = address
    }

    /// Parses the error `answeredBy` a node. An empty host (`MOVED 3999 :6381`, sent by nodes
    /// whose preferred endpoint is unknown) means the host of the node that answered.
    package init?(_ error: RedisServerError, answeredBy: RedisAddress? = nil) {
        let parts = error.message.split(separator: " ")
        guard parts.count == 3, let slot = Int(parts[1]), (0..<HashSlot.count).contains(slot) else { return nil }
        let address: RedisAddress
        if let parsed = RedisAddress(hostAndPort: parts[2]) {
            address = parsed
        } else if parts[2].hasPrefix(":"), let port = Int(parts[2].dropFirst()), (1...65535).contains(port),
                  case .tcp(let host, _) = answeredBy {
            address = .tcp(host: host, port: port)
        } else {
            return nil
        }
        switch parts[0] {
        case "MOVED": kind = .moved
        case "ASK": kind = .ask
        default: return nil
        }
        self.slot = slot
        self.address = address
    }
}
