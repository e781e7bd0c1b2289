/// Where and how to reach a Redis server.
public struct RedisEndpoint: Equatable, Sendable, CustomStringConvertible {
    public enum Address: Equatable, Sendable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var address: Address
    /// ACL user name for `AUTH`, or `nil` for the default user.
    public var username: String?
    /// Password for `AUTH`, or `nil` when the server needs none.
    public var password: String?
    /// Database number for `SELECT` (0 is the default and sends nothing).
    public var database: Int
    /// Bound on establishing the connection, in milliseconds.
    public var connectTimeoutMilliseconds: Int
    /// Bound on each read and write once connected, in milliseconds.
    public var commandTimeoutMilliseconds: Int

    public init(
        address: Address = .tcp(host: "127.0.0.1", port: 6379),
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeoutMilliseconds: Int = 200,
        commandTimeoutMilliseconds: Int = 500
    ) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.commandTimeoutMilliseconds = commandTimeoutMilliseconds
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]` or `unix:///path/to/socket`.
    /// Returns `nil` for anything else.
    public init?(url: String) {
        self.init()
        if url.hasPrefix("unix://") {
            let path = String(url.dropFirst("unix://".count))
            guard path.hasPrefix("/"), path.count > 1 else { return nil }
            address = .unix(path: path)
            return
        }
        guard url.hasPrefix("redis://") else { return nil }
        var rest = Substring(url.dropFirst("redis://".count))
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : String(user)
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            if !db.isEmpty {
                guard let number = Int(db), number >= 0 else { return nil }
                database = number
            }
            rest = rest[..<slash]
        }
        var host = Substring("127.0.0.1")
        var port = 6379
        if let colon = rest.lastIndex(of: ":") {
            guard let parsed = Int(rest[rest.index(after: colon)...]), (1...65535).contains(parsed) else { return nil }
            port = parsed
            host = rest[..<colon]
        } else if !rest.isEmpty {
            host = rest
        }
        if host.isEmpty { host = "127.0.0.1" }
        address = .tcp(host: String(host), port: port)
    }

    /// The address without credentials, safe to log.
    public var description: String {
        switch address {
        case .tcp(let host, let port): return "redis://\(host):\(port)/\(database)"
        case .unix(let path): return "unix://\(path)"
        }
    }
}
