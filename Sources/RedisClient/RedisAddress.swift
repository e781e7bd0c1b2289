/// Where one Redis server listens.
public enum RedisAddress: Hashable, Sendable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    /// Parses `host:port` or `[v6]:port` as cluster and Sentinel replies give them.
    public init?(hostAndPort text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard Self.isValidHost(host) else { return nil }
        self = .tcp(host: String(host), port: port)
    }

    /// Whether `host` can name a server: a DNS name, an IPv4 address or an IPv6 address (without
    /// its brackets, `%zone` allowed). Brackets, spaces, control characters and the like cannot
    /// be resolved, and a host holding them would not read back from its own `host:port`.
    static func isValidHost(_ host: some StringProtocol) -> Bool {
        !host.isEmpty && host.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "%"):
                return true
            default:
                return false
            }
        }
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}
