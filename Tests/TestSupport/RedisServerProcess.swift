import Foundation
import RedisClient

/// A private `redis-server` on a free loopback port, for one test or class: plain TCP, or TLS
/// only (`tls`). By default without persistence; with `configurationFile` (such as
/// `deploy/redis-local.conf`) the server runs with that file's settings, keeping its data in
/// `directory`, so that a restart after `stop` reloads what was saved. `arguments` are added to
/// the command line (an `--aclfile`, say), and `admin` is the user the test's own inspection
/// logs in as when the default user is off.
public final class RedisServerProcess: @unchecked Sendable {
    // @unchecked: every stored property is set in init (or by restart on the test's own thread).
    public let port: Int
    public let directory: URL
    public let tls: RedisServerTLS?
    public let extraArguments: [String]
    public let admin: RedisTestCredentials?
    public let configurationFile: URL?
    private var process: ManagedProcess?

    public init(port: Int = FreePort.next(), tls: RedisServerTLS? = nil, arguments: [String] = [], admin: RedisTestCredentials? = nil,
                configurationFile: URL? = nil) throws {
        self.port = port
        self.configurationFile = configurationFile
        self.tls = tls
        self.extraArguments = arguments
        self.admin = admin
        directory = try Paths.temporaryDirectory("redis")
        try start()
    }

    /// Starts the server again on the same port (after `stop`): with an empty dataset, or with
    /// `configurationFile`, with whatever it saved in `directory`. Returns once the server
    /// answers commands (loading a saved dataset comes first).
    public func start() throws {
        let listen = tls?.serverArguments(port: port) ?? ["--port", String(port)]
        // The file's settings (then only what places this server: port, address, folder), or
        // no persistence at all.
        let persistence = configurationFile.map { [$0.path] } ?? []
        let noPersistence = configurationFile == nil ? ["--save", "", "--appendonly", "no"] : []
        process = try ManagedProcess(
            name: "redis-server", executable: Paths.tool("redis-server"),
            arguments: persistence + listen + ["--bind", "127.0.0.1"] + noPersistence
                + ["--enable-debug-command", "local", "--dir", directory.path, "--daemonize", "no"] + extraArguments,
            logFile: directory.appendingPathComponent("redis.log"))
        guard FreePort.waitUntilListening(port) else { throw TestSupportError.didNotStart("redis-server on \(port)") }
        let deadline = Date().addingTimeInterval(20)
        while (try? connection().send(RedisCommand("PING"))) != .status("PONG") {
            guard Date() < deadline else { throw TestSupportError.didNotStart("redis-server on \(port) (never answered PING)") }
            usleep(20_000)
        }
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
