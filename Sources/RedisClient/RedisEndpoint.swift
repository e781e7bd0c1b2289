/// How to reach and log in to one Redis server: its address, credentials, database, TLS and
/// timeouts. `RedisConfiguration` makes one per node it talks to.
public struct RedisEndpoint: Equatable, Sendable, CustomStringConvertible {
    public var address: RedisAddress
    /// ACL user name for `AUTH`, or `nil` for the default user.
    public var username: String?
    /// Password for `AUTH`, or `nil` when the server needs none.
    public var password: String?
    /// Database number for `SELECT` (0 is the default and sends nothing).
    public var database: Int
    /// Bound on establishing the connection (TLS handshake and `AUTH` included), in milliseconds.
    public var connectTimeoutMilliseconds: Int
    /// Bound on each read and write once connected, in milliseconds.
    public var commandTimeoutMilliseconds: Int
    /// TLS settings; `nil` speaks plain TCP (or a Unix socket).
    public var tls: RedisTLSConfiguration?
    /// When set, its current value replaces `password` at every (re)connection: a password
    /// read again on SIGHUP reaches connections made after it.
    public var passwordSource: RedisPasswordSource?

    /// The password `AUTH` sends now.
    public var loginPassword: String? { passwordSource?.current ?? password }

    public init(
        address: RedisAddress = .tcp(host: "127.0.0.1", port: 6379),
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeoutMilliseconds: Int = 200,
        commandTimeoutMilliseconds: Int = 500,
        tls: RedisTLSConfiguration? = nil
    ) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.commandTimeoutMilliseconds = commandTimeoutMilliseconds
        self.tls = tls
    }

    /// The address without credentials, safe to log.
    public var description: String {
        (tls == nil ? "redis://" : "rediss://") + address.description + (database == 0 ? "" : "/\(database)")
    }
}
