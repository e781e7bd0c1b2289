import Foundation

/// One line of nginx's access log in the template's `session_store` format.
public struct AccessLogEntry: Sendable {
    /// The request line, such as `GET /count?probe=3 HTTP/1.1`.
    public let request: String
    public let status: Int
    /// Seconds from the first byte read to the last byte sent.
    public let requestTime: Double
    /// Every instance tried, in order (`127.0.0.1:9001` or `unix:/path`); empty when nginx
    /// answered by itself.
    public let upstreams: [String]
    /// What each tried instance answered, in the same order (`504`, `200`, `502`…).
    public let upstreamStatuses: [String]

    /// The path and query of the request line.
    public var target: String {
        let parts = request.split(separator: " ")
        return parts.count >= 2 ? String(parts[1]) : ""
    }
}

/// nginx's access log as the template writes it (see `log_format session_store`).
public enum AccessLog {
    /// Every complete line of the log at `url` that has the upstream fields.
    public static func entries(_ url: URL) -> [AccessLogEntry] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { parse(String($0)) }
    }

    static func parse(_ line: String) -> AccessLogEntry? {
        guard let requestStart = line.firstIndex(of: "\""),
              let requestEnd = line[line.index(after: requestStart)...].firstIndex(of: "\"") else { return nil }
        let request = String(line[line.index(after: requestStart)..<requestEnd])
        let afterRequest = line[line.index(after: requestEnd)...].split(separator: " ")
        guard let status = afterRequest.first.flatMap({ Int($0) }) else { return nil }
        func field(_ name: String) -> String? {
            guard let start = line.range(of: " \(name)=") else { return nil }
            var rest = line[start.upperBound...]
            if rest.hasPrefix("\"") {
                rest = rest.dropFirst()
                return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
            }
            return String(rest.prefix { $0 != " " })
        }
        func list(_ value: String?) -> [String] {
            guard let value, value != "-" else { return [] }
            // Tries are separated by ", " and an internal redirect by " : ".
            return value.replacingOccurrences(of: " : ", with: ", ").components(separatedBy: ", ")
        }
        return AccessLogEntry(request: request, status: status, requestTime: Double(field("rt") ?? "") ?? 0,
                              upstreams: list(field("upstream")), upstreamStatuses: list(field("upstream_status")))
    }
}
