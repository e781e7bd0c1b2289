import Foundation
import RedisClient

/// A private `redis-server` on a free loopback port, for one test or class. By default without
/// persistence; with `configurationFile` (such as `deploy/redis-local.conf`) the server runs
/// with that file's settings, keeping its data in `directory`, so that a restart after `stop`
/// reloads what was saved.
public final class RedisServerProcess: @unchecked Sendable {
    // @unchecked: every stored property is set in init (or by restart on the test's own thread).
    public let port: Int
    public let directory: URL
    public let configurationFile: URL?
    private var process: ManagedProcess?

    public init(port: Int = FreePort.next(), configurationFile: URL? = nil) throws {
        self.port = port
        self.configurationFile = configurationFile
        directory = try Paths.temporaryDirectory("redis")
        try start()
    }

    /// Starts the server again on the same port (after `stop`): with an empty dataset, or with
    /// `configurationFile`, with whatever it saved in `directory`. Returns once the server
    /// answers commands (loading a saved dataset comes first).
    public func start() throws {
        // The file's settings (then only what places this server: port, address, folder), or
        // no persistence at all.
        var arguments = configurationFile.map { [$0.path] } ?? ["--save", "", "--appendonly", "no"]
        arguments += ["--port", String(port), "--bind", "127.0.0.1", "--enable-debug-command", "local",
                      "--dir", directory.path, "--daemonize", "no"]
        process = try ManagedProcess(
            name: "redis-server", executable: Paths.tool("redis-server"), arguments: arguments,
            logFile: directory.appendingPathComponent("redis.log"))
        guard FreePort.waitUntilListening(port) else { throw TestSupportError.didNotStart("redis-server on \(port)") }
        let deadline = Date().addingTimeInterval(20)
        while (try? connection().send(RedisCommand("PING"))) != .status("PONG") {
            guard Date() < deadline else { throw TestSupportError.didNotStart("redis-server on \(port) (never answered PING)") }
            usleep(20_000)
        }
    }

    /// The server's pid while it runs.
    public var pid: Int32? { process?.pid }

    /// Stops the server (SIGKILL when `abruptly`, as a crash would).
    public func stop(abruptly: Bool = false) {
        if abruptly { process?.kill9() } else { process?.stop() }
        process = nil
    }

    public var url: String { "redis://127.0.0.1:\(port)" }

    public var endpoint: RedisEndpoint {
        RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port))
    }

    /// A new connection for the test's own inspection.
    public func connection() -> RedisConnection {
        RedisConnection(endpoint: endpoint)
    }

    /// The deployment as a client configuration (one node).
    public var configuration: RedisConfiguration {
        RedisConfiguration(topology: .single(.tcp(host: "127.0.0.1", port: port)))
    }

    /// A new client (as the store uses) for this server.
    public func client() -> RedisClient {
        RedisClient(configuration: configuration)
    }

    /// Calls per command from `INFO commandstats` (`evalsha` → 12, …).
    public func commandCalls() throws -> [String: Int] {
        let reply = try connection().send(RedisCommand("INFO", "commandstats"))
        var calls: [String: Int] = [:]
        for line in (reply.text ?? "").split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
            let parts = line.dropFirst("cmdstat_".count).split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            for field in parts[1].split(separator: ",") where field.hasPrefix("calls=") {
                calls[String(parts[0])] = Int(field.dropFirst("calls=".count))
            }
        }
        return calls
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

    public var description: String {
        switch self {
        case .didNotStart(let what): return "\(what) did not start"
        case .protocolError(let why): return why
        }
    }
}
