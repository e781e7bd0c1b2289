import Synchronization

/// Everything needed to talk to a Redis deployment, parsed from one URL:
///
/// - `redis://[[user]:password@]host[:port][/db]` or `unix:///path/redis.sock[?db=N]` — one node;
/// - `redis-cluster://[[user]:password@]host:port[,host:port…]` — seed nodes of a Redis Cluster;
/// - `redis-sentinel://[[user]:password@]host:port[,host:port…]/MASTER_NAME[/db]` — Sentinel;
/// - `rediss…` — the same over TLS (see `tls`).
///
/// User and password may be percent-encoded. A password given apart (a file) replaces the
/// URL's, so it never has to be on a command line.
public struct RedisConfiguration: Equatable, Sendable, CustomStringConvertible {
    /// How the deployment is laid out.
    public enum Topology: Equatable, Sendable {
        case single(RedisAddress)
        case cluster(seeds: [RedisAddress])
        case sentinel(sentinels: [RedisAddress], masterName: String)
    }

    public var topology: Topology
    public var username: String?
    public var password: String?
    /// Database number (not for clusters, which have only 0).
    public var database: Int
    /// TLS settings for every node (and Sentinel); `nil` is plain TCP.
    public var tls: RedisTLSConfiguration?
    /// Credentials for the Sentinels themselves (their `requirepass` or ACL user), which are
    /// not the data nodes' (those are `username` and `password`); `nil`: no `AUTH` to Sentinels.
    public var sentinelUsername: String?
    public var sentinelPassword: String?
    public var connectTimeoutMilliseconds: Int
    public var commandTimeoutMilliseconds: Int
    /// Where a password that may change while the process runs is kept (a password file read
    /// again on SIGHUP): when set, new connections log in with its current value instead of
    /// `password`. Connections already made stay as they are.
    public var passwordSource: RedisPasswordSource?

    public init(topology: Topology = .single(.tcp(host: "127.0.0.1", port: 6379)), username: String? = nil, password: String? = nil,
                database: Int = 0, tls: RedisTLSConfiguration? = nil, connectTimeoutMilliseconds: Int = 200,
                commandTimeoutMilliseconds: Int = 500) {
        self.topology = topology
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.commandTimeoutMilliseconds = commandTimeoutMilliseconds
    }

    /// Parses a URL of the forms above; the error names what is wrong.
    public init(url: String) throws(RedisConfigurationError) {
        self.init()
        guard let schemeEnd = url.firstRange(of: "://") else {
            throw .init("no scheme: expected redis://, rediss://, redis-cluster://, redis-sentinel:// or unix://")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(url[schemeEnd.upperBound...])
        if scheme == "unix" {
            var path = rest
            if let question = rest.firstIndex(of: "?") {
                path = rest[..<question]
                let query = rest[rest.index(after: question)...]
                guard query.hasPrefix("db="), let number = Int(query.dropFirst(3)), number >= 0 else { throw .init("unix URL: only ?db=N is understood") }
                database = number
            }
            guard path.hasPrefix("/"), path.count > 1 else { throw .init("unix URL: expected unix:///absolute/path") }
            topology = .single(.unix(path: String(path)))
            return
        }
        let secure: Bool
        let kind: String
        switch scheme {
        case "redis": (secure, kind) = (false, "single")
        case "rediss": (secure, kind) = (true, "single")
        case "redis-cluster": (secure, kind) = (false, "cluster")
        case "rediss-cluster": (secure, kind) = (true, "cluster")
        case "redis-sentinel": (secure, kind) = (false, "sentinel")
        case "rediss-sentinel": (secure, kind) = (true, "sentinel")
        default: throw .init("unknown scheme '\(scheme)://'")
        }
        if secure { tls = RedisTLSConfiguration() }
        // Credentials: everything before the last '@' that precedes the path.
        let authority = rest.prefix { $0 != "/" }
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : try Self.percentDecoded(user, what: "user name")
                password = try Self.percentDecoded(credentials[credentials.index(after: colon)...], what: "password")
            } else {
                password = try Self.percentDecoded(credentials, what: "password")
            }
            rest = rest[rest.index(after: at)...]
        }
        let hosts = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(hosts.count)
        let addresses = try hosts.split(separator: ",", omittingEmptySubsequences: false).map { part throws(RedisConfigurationError) in
            try Self.address(part, defaultPort: kind == "sentinel" ? 26379 : 6379)
        }
        guard !addresses.isEmpty else { throw .init("no host given") }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        switch kind {
        case "single":
            guard addresses.count == 1 else { throw .init("\(scheme):// takes one host; use \(secure ? "rediss" : "redis")-cluster:// or -sentinel:// for several") }
            topology = .single(addresses[0])
            database = try Self.database(segments.first, scheme: scheme)
            guard segments.count <= 1 else { throw .init("unexpected path after the database number") }
        case "cluster":
            topology = .cluster(seeds: addresses)
            guard segments.allSatisfy({ $0.isEmpty }) else { throw .init("a cluster has only database 0: no path after the hosts") }
        default:
            guard let name = segments.first, !name.isEmpty else { throw .init("\(scheme):// needs the master name: \(scheme)://host:port/MASTER_NAME[/db]") }
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else { throw .init("invalid master name '\(name)'") }
            topology = .sentinel(sentinels: addresses, masterName: String(name))
            database = try Self.database(segments.dropFirst().first, scheme: scheme)
            guard segments.count <= 2 else { throw .init("unexpected path after the database number") }
        }
    }

    /// Whether `url`'s credentials are one word without a colon (`redis://WORD@host`): read as a
    /// password, as redis-cli and Lettuce read it, though redis-py reads it as a user name.
    public static func credentialsAreOneWord(inURL url: String) -> Bool {
        guard let schemeEnd = url.firstRange(of: "://") else { return false }
        let authority = url[schemeEnd.upperBound...].prefix { $0 != "/" }
        guard let at = authority.lastIndex(of: "@") else { return false }
        let credentials = authority[..<at]
        return !credentials.isEmpty && !credentials.contains(":")
    }

    /// The endpoint for one node of this deployment.
    public func endpoint(_ address: RedisAddress) -> RedisEndpoint {
        var endpoint = RedisEndpoint(address: address, username: username, password: password, database: database,
                                     connectTimeoutMilliseconds: connectTimeoutMilliseconds, commandTimeoutMilliseconds: commandTimeoutMilliseconds, tls: tls)
        endpoint.passwordSource = passwordSource
        return endpoint
    }

    /// The deployment without credentials, safe to log.
    public var description: String {
        let s = tls == nil ? "" : "s"
        switch topology {
        case .single(.unix(let path)): return "unix://\(path)" + (database == 0 ? "" : "?db=\(database)")
        case .single(let address): return "redis\(s)://\(address)" + (database == 0 ? "" : "/\(database)")
        case .cluster(let seeds): return "redis\(s)-cluster://" + seeds.map(\.description).joined(separator: ",")
        case .sentinel(let sentinels, let name):
            return "redis\(s)-sentinel://" + sentinels.map(\.description).joined(separator: ",") + "/\(name)" + (database == 0 ? "" : "/\(database)")
        }
    }

    private static func address(_ text: Substring, defaultPort: Int) throws(RedisConfigurationError) -> RedisAddress {
        guard !text.isEmpty else { throw .init("empty host in the host list") }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .init("unclosed [ in '\(text)'") }
            let host = text[text.index(after: text.startIndex)..<close]
            guard RedisAddress.isValidHost(host) else { throw .init("invalid host in '\(text)'") }
            let after = text[text.index(after: close)...]
            if after.isEmpty { return .tcp(host: String(host), port: defaultPort) }
            guard after.hasPrefix(":"), let port = Int(after.dropFirst()), (1...65535).contains(port) else { throw .init("bad port in '\(text)'") }
            return .tcp(host: String(host), port: port)
        }
        if let colon = text.lastIndex(of: ":") {
            let host = text[..<colon]
            guard !host.isEmpty else { throw .init("no host in '\(text)'") }
            guard RedisAddress.isValidHost(host) else { throw .init("invalid host in '\(text)'") }
            guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { throw .init("bad port in '\(text)'") }
            return .tcp(host: String(host), port: port)
        }
        guard RedisAddress.isValidHost(text) else { throw .init("invalid host in '\(text)'") }
        return .tcp(host: String(text), port: defaultPort)
    }

    private static func database(_ segment: Substring?, scheme: String) throws(RedisConfigurationError) -> Int {
        guard let segment, !segment.isEmpty else { return 0 }
        guard let number = Int(segment), number >= 0 else { throw .init("database must be a number, got '\(segment)'") }
        return number
    }

    private static func percentDecoded(_ text: Substring, what: String) throws(RedisConfigurationError) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let high = utf8.index(after: index)
                guard high < utf8.endIndex, utf8.index(after: high) < utf8.endIndex,
                      let value = UInt8(String(decoding: [utf8[high], utf8[utf8.index(after: high)]], as: UTF8.self), radix: 16) else {
                    throw .init("bad %-escape in the \(what)")
                }
                bytes.append(value)
                index = utf8.index(high, offsetBy: 2)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { throw .init("the \(what) is not UTF-8") }
        return decoded
    }
}

/// A Redis URL or setting that cannot be used; the message says why (never quoting a password).
public struct RedisConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A Redis password shared by every client of a process and replaced as a whole (see
/// `RedisConfiguration.passwordSource`). Equal when the passwords are.
public final class RedisPasswordSource: Equatable, Sendable {
    private let value: Mutex<String?>

    public init(_ password: String?) { value = Mutex(password) }

    /// The password new connections use.
    public var current: String? { value.withLock { $0 } }

    /// Replaces the password; returns whether it changed.
    @discardableResult
    public func replace(with password: String?) -> Bool {
        value.withLock { current in
            guard current != password else { return false }
            current = password
            return true
        }
    }

    public static func == (lhs: RedisPasswordSource, rhs: RedisPasswordSource) -> Bool { lhs.current == rhs.current }
}
