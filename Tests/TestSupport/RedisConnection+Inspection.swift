import Foundation
import RedisClient

/// What tests ask a server about itself, over one of the test's own connections.
extension RedisConnection {
    /// Sends `command` and throws when the server answers with an error.
    @discardableResult
    public func checked(_ arguments: String...) throws -> RedisReply {
        let reply = try send(RedisCommand(arguments: arguments))
        if let error = reply.serverError { throw RedisError.server(error) }
        return reply
    }

    /// `checked` with the arguments as an array.
    @discardableResult
    public func checked(arguments: [String]) throws -> RedisReply {
        let reply = try send(RedisCommand(arguments: arguments))
        if let error = reply.serverError { throw RedisError.server(error) }
        return reply
    }

    /// `INFO section` as `field → value`.
    public func info(_ section: String) throws -> [String: String] {
        Self.fields(try checked("INFO", section).text ?? "")
    }

    /// Whether `replicas` replicas acknowledge a write on this master within `milliseconds`:
    /// writes `probeKey` and asks `WAIT`. (A replica fresh from a full sync is reported
    /// `state=online` before it is sent the stream, which starts with its first acknowledgement
    /// up to a second later; `WAIT` sees the difference.)
    public func replicasAcknowledge(_ replicas: Int, probeKey: String, milliseconds: Int = 100) throws -> Bool {
        try checked("SET", probeKey, "1")
        return try checked("WAIT", String(replicas), String(milliseconds)).integer == Int64(replicas)
    }

    /// `CLUSTER INFO` as `field → value` (`cluster_state` → `ok`, …).
    public func clusterInfo() throws -> [String: String] {
        Self.fields(try checked("CLUSTER", "INFO").text ?? "")
    }

    private static func fields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":"), !line.hasPrefix("#") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }

    /// Calls per command from `INFO commandstats` (`evalsha` → 12, `cluster|slots` → 1, …).
    public func commandCalls() throws -> [String: Int] {
        var calls: [String: Int] = [:]
        for (name, value) in try info("commandstats") where name.hasPrefix("cmdstat_") {
            for field in value.split(separator: ",") where field.hasPrefix("calls=") {
                calls[String(name.dropFirst("cmdstat_".count))] = Int(field.dropFirst("calls=".count))
            }
        }
        return calls
    }
}
