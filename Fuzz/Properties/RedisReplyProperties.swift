import RedisClient

extension FuzzTarget {
    /// Bytes a Redis server (or anyone between it and us) sends.
    static let redisReply = FuzzTarget(
        name: "redis-reply",
        summary: "RESP bytes → RedisReplyReader (whole, in random pieces, re-encoded), ClusterSlotMap(clusterSlots:), ClusterRedirect",
        check: RedisReplyProperties.check
    )
}

/// Properties of the reply reader and of what is built from replies.
enum RedisReplyProperties {
    /// What a reader made of a stream: the replies, then whether it stopped on a protocol error.
    struct Reading: Equatable {
        var replies: [RedisReply] = []
        var failed = false
    }

    static func check(_ input: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let bytes = Array(input)
        let whole = read([bytes[...]])
        // Fed in pieces (as TCP delivers them), the reader yields the same replies.
        var random = InputRandom(input, salt: 3)
        var pieces: [ArraySlice<UInt8>] = []
        var start = 0
        for cut in random.cuts(in: bytes.count, maximum: 8) + [bytes.count] {
            pieces.append(bytes[start..<cut])
            start = cut
        }
        try expect(read(pieces) == whole, "replies fed in pieces equal the replies fed whole", "cuts \(pieces.map(\.count))")
        if bytes.count <= 256 {
            try expect(read(bytes.map { [$0][...] }) == whole, "replies fed byte by byte equal the replies fed whole")
        }
        for reply in whole.replies {
            // Written back as RESP, every reply reads back as itself.
            let encoded = RESP.encode(reply)
            let again = read([encoded[...]])
            try expect(again == Reading(replies: [reply]), "a reply re-encoded reads back as itself", show(encoded))
            try checkCluster(reply)
        }
    }

    static func read(_ pieces: [ArraySlice<UInt8>]) -> Reading {
        var reading = Reading()
        guard let reader = RedisReplyReader() else { return reading }
        for piece in pieces {
            do {
                try reader.feed(Array(piece))
                while let reply = try reader.next() { reading.replies.append(reply) }
            } catch {
                reading.failed = true
                return reading
            }
        }
        return reading
    }

    /// A `CLUSTER SLOTS` reply becomes a slot map that gives every slot of a range to that
    /// range's master (a later range wins), no slot outside the ranges to anyone, and follows a
    /// `MOVED`. An error reply that is a redirection names a slot in range and an address that
    /// survives being written back.
    private static func checkCluster(_ reply: RedisReply) throws(PropertyViolation) {
        let answeredBy = RedisAddress.tcp(host: "10.0.0.9", port: 7000)
        if var map = ClusterSlotMap(clusterSlots: reply, answeredBy: answeredBy) {
            guard case .array(let ranges) = reply else {
                throw PropertyViolation(property: "only an array makes a slot map", detail: "")
            }
            var owners = [RedisAddress?](repeating: nil, count: HashSlot.count)
            var replicas: [RedisAddress: Int] = [:]
            for range in ranges {
                guard case .array(let fields) = range, let start = fields[0].integer, let end = fields[1].integer,
                      case .array(let node) = fields[2], let port = node[1].integer else {
                    throw PropertyViolation(property: "a slot map is only made of well-formed ranges", detail: "\(range)")
                }
                let host = node[0].text ?? ""
                let master = RedisAddress.tcp(host: host.isEmpty || host == "?" ? "10.0.0.9" : host, port: Int(port))
                try expect(0 <= start && start <= end && end < HashSlot.count, "ranges lie within the slots", "\(start)-\(end)")
                for slot in Int(start)...Int(end) { owners[slot] = master }
                replicas[master] = max(replicas[master] ?? 0, fields.count - 3)
            }
            for slot in 0..<HashSlot.count where map.owner(of: slot) != owners[slot] {
                throw PropertyViolation(property: "each slot belongs to the master of the last range holding it",
                                        detail: "slot \(slot): \(String(describing: map.owner(of: slot))) vs \(String(describing: owners[slot]))")
            }
            try expect(map.coversAllSlots == !owners.contains(nil), "coversAllSlots means every slot has a master")
            for master in map.masters {
                try expect(map.replicas(of: master) == replicas[master] ?? 0, "replica counts are the largest reported", "\(master)")
            }
            let slot = Int(truncatingIfNeeded: ranges.count &* 7919) & (HashSlot.count - 1)
            let target = RedisAddress.tcp(host: "10.9.9.9", port: 7999)
            map.move(slot, to: target)
            try expect(map.owner(of: slot) == target, "a MOVED slot belongs to its new master")
        }
        if let error = reply.serverError, let redirect = ClusterRedirect(error) {
            try expect((0..<HashSlot.count).contains(redirect.slot), "a redirection names a slot in range", "\(redirect.slot)")
            let written = RedisServerError(message: "\(redirect.kind == .moved ? "MOVED" : "ASK") \(redirect.slot) \(redirect.address)")
            try expect(ClusterRedirect(written) == redirect, "a redirection written back reads back", written.message)
        }
    }
}

/// RESP2 as a server writes it.
enum RESP {
    static func encode(_ reply: RedisReply) -> [UInt8] {
        var bytes: [UInt8] = []
        append(reply, to: &bytes)
        return bytes
    }

    private static func append(_ reply: RedisReply, to bytes: inout [UInt8]) {
        switch reply {
        case .string(let value):
            bytes += Array("$\(value.count)\r\n".utf8) + value + [13, 10]
        case .status(let text):
            bytes += Array("+\(text)\r\n".utf8)
        case .error(let error):
            bytes += Array("-\(error.message)\r\n".utf8)
        case .integer(let value):
            bytes += Array(":\(value)\r\n".utf8)
        case .null:
            bytes += Array("$-1\r\n".utf8)
        case .array(let elements):
            bytes += Array("*\(elements.count)\r\n".utf8)
            for element in elements { append(element, to: &bytes) }
        }
    }
}
