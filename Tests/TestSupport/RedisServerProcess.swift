import Foundation
import RedisClient

/// A private `redis-server` on a free loopback port, without persistence, for one test or class:
/// plain TCP, or TLS only (`tls`); `arguments` are added to the command line (an `--aclfile`,
/// say), and `admin` is the user the test's own inspection logs in as when the default user
/// is off.
public final class RedisServerProcess: @unchecked Sendable {
    // @unchecked: every stored property is set in init (or by restart on the test's own thread).
    public let port: Int
    public let directory: URL
    public let tls: RedisServerTLS?
    public let extraArguments: [String]
    public let admin: RedisTestCredentials?
    private var process: ManagedProcess?

    public init(port: Int = FreePort.next(), tls: RedisServerTLS? = nil, arguments: [String] = [], admin: RedisTestCredentials? = nil) throws {
        self.port = port
        self.tls = tls
        self.extraArguments = arguments
        self.admin = admin
        directory = try Paths.temporaryDirectory("redis")
        try start()
    }

    /// Starts the server again on the same port (after `stop`), with an empty dataset.
    public func start() throws {
        let listen = tls?.serverArguments(port: port) ?? ["--port", String(port)]
        process = try ManagedProcess(
            name: "redis-server", executable: Paths.tool("redis-server"),
            arguments: listen + ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--enable-debug-command", "local",
                                 "--dir", directory.path] + extraArguments,
            logFile: directory.appendingPathComponent("redis.log"))
        guard FreePort.waitUntilListening(port) else { throw TestSupportError.didNotStart("redis-server on \(port)") }
    }

    /// Stops the server (SIGKILL when `abruptly`, as a crash would).
    public func stop(abruptly: Bool = false) {
        if abruptly { process?.kill9() } else { process?.stop() }
        process = nil
    }

    /// The pid of the running server.
    public var pid: Int32? { process?.pid }

    public var url: String { (tls == nil ? "redis://" : "rediss://") + "127.0.0.1:\(port)" }

    /// The server's address for the test's own connections (as admin, over TLS when it is on).
    public var endpoint: RedisEndpoint {
        RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port), username: admin?.username, password: admin?.password,
                      tls: tls?.clientConfiguration)
    }

    /// A new connection for the test's own inspection.
    public func connection() -> RedisConnection {
        RedisConnection(endpoint: endpoint)
    }

    /// The deployment as a client configuration (one node; TLS and admin as for `endpoint`).
    public var configuration: RedisConfiguration {
        RedisConfiguration(topology: .single(.tcp(host: "127.0.0.1", port: port)), username: admin?.username, password: admin?.password,
                           tls: tls?.clientConfiguration)
    }

    /// A new client (as the store uses) for this server.
    public func client() -> RedisClient {
        RedisClient(configuration: configuration)
    }

    /// Calls per command from `INFO commandstats` (`evalsha` → 12, …).
    public func commandCalls() throws -> [String: Int] {
        try connection().commandCalls()
    }

    /// Resets `INFO commandstats`.
    public func resetStatistics() throws {
        _ = try connection().send(RedisCommand("CONFIG", "RESETSTAT"))
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

public enum TestSupportError: Error, CustomStringConvertible {
    case didNotStart(String)
    case protocolError(String)
    case timedOut(String)

    public var description: String {
        switch self {
        case .didNotStart(let what): return "\(what) did not start"
        case .protocolError(let why): return why
        case .timedOut(let what): return "timed out waiting for \(what)"
        }
    }
}
