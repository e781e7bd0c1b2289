import Foundation
import RedisClient

/// The whole service on free loopback ports: a private redis-server, `instanceCount`
/// session-fcgi instances started by spawn-fcgi (on TCP ports, or on Unix sockets), and nginx
/// in front (HTTP, or HTTPS with a self-signed certificate made for the stack), rendered from
/// `nginx/session-store.conf.template`. Everything is stopped by pid when the stack goes away.
public final class SessionStack: @unchecked Sendable {
    // @unchecked: used from one test at a time; the mutable instance list is only changed by
    // the owning test (kill/start/pause), never concurrently with requests that read it.

    /// How nginx reaches the instances.
    public enum Transport: Sendable {
        /// A loopback TCP port per instance.
        case tcp
        /// A Unix socket per instance in the stack's folder: mode 0660 with nginx's worker group
        /// when the tests run as root (nginx's workers then run as www-data), 0600 otherwise.
        case unixSocket
    }

    public let redis: RedisServerProcess
    /// The Redis the instances use: `redis`'s URL, or the deployment given as `redisURL` (a
    /// Cluster or Sentinel of the test's own; `redis` then only stands by).
    public let redisURL: String
    /// The Redis options the instances get besides `--redis-url` (TLS files, a password file):
    /// what a command-line tool needs to reach the same Redis.
    public let redisArguments: [String]
    /// The deployment SESSION_TEST_REDIS chose, when the test brought no Redis of its own.
    public let deployment: EndToEndRedis?
    public let nginxPort: Int
    /// Ports of the instances (empty when they listen on Unix sockets).
    public let instancePorts: [Int]
    /// Every instance as nginx names it (in `$upstream_addr`): `127.0.0.1:PORT` or `unix:/path`.
    public let instanceAddresses: [String]
    /// Port of the demo second upstream behind the gateway (`/app/`).
    public let appPort: Int
    public let directory: URL
    public let extraArguments: [String]
    public let https: Bool
    private var instances: [String: ManagedProcess] = [:]
    private var nginx: ManagedProcess?

    /// The group nginx's workers run as when nginx starts as root (see nginx/render).
    public static let nginxWorkerGroup = "www-data"

    /// - Parameters:
    ///   - redis: a Redis of the test's own (say, with a configuration file); the stack stops it.
    ///   - redisURL: the instances use this deployment instead (`redis-cluster://…`,
    ///     `redis-sentinel://…`); the test owns it and stops it.
    public init(instanceCount: Int = 2, threads: Int = 8, extraArguments: [String] = [],
                transport: Transport = .tcp, https: Bool = false, redis: RedisServerProcess? = nil,
                redisURL: String? = nil) throws {
        let directory = try Paths.temporaryDirectory("stack")
        self.directory = directory
        // Without a Redis of the test's own: the one SESSION_TEST_REDIS names (see EndToEndRedis).
        var redisArguments: [String] = []
        if let redis {
            self.redis = redis
            self.redisURL = redisURL ?? redis.url
            deployment = nil
        } else {
            let chosen = try EndToEndRedis(redisURL == nil ? nil : .plain)
            self.redis = chosen.server
            self.redisURL = redisURL ?? chosen.url
            if redisURL == nil { redisArguments = chosen.instanceArguments }
            deployment = redisURL == nil ? chosen : nil
        }
        self.redisArguments = redisArguments
        nginxPort = FreePort.next()
        appPort = FreePort.next()
        self.https = https
        switch transport {
        case .tcp:
            instancePorts = (0..<instanceCount).map { _ in FreePort.next() }
            instanceAddresses = instancePorts.map { "127.0.0.1:\($0)" }
        case .unixSocket:
            instancePorts = []
            instanceAddresses = (0..<instanceCount).map { "unix:" + directory.appendingPathComponent("fcgi-\($0).sock").path }
        }
        self.extraArguments = ["--threads", String(threads)] + redisArguments + extraArguments
        for address in instanceAddresses { try startInstance(address: address) }
        try startNginx()
    }

    /// Starts (or restarts) the instance on `port` through spawn-fcgi.
    public func startInstance(port: Int) throws {
        try startInstance(address: "127.0.0.1:\(port)")
    }

    /// Starts (or restarts) the instance at `address` (one of `instanceAddresses`).
    public func startInstance(address: String) throws {
        let binary = Paths.sessionFCGIBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestSupportError.didNotStart("session-fcgi: no binary at \(binary) (swift build first)")
        }
        var socketArguments: [String]
        let socketPath = address.hasPrefix("unix:") ? String(address.dropFirst("unix:".count)) : nil
        if let socketPath {
            try? FileManager.default.removeItem(atPath: socketPath)
            socketArguments = ["-s", socketPath]
            socketArguments += getuid() == 0 ? ["-M", "0660", "-G", Self.nginxWorkerGroup] : ["-M", "0600"]
        } else {
            let port = address.split(separator: ":").last.map(String.init) ?? ""
            socketArguments = ["-a", "127.0.0.1", "-p", port]
        }
        // -n: spawn-fcgi binds the socket and execs the app in its own process, so the pid we
        // hold is the instance's.
        instances[address] = try ManagedProcess(
            name: "session-fcgi:\(address)", executable: Paths.tool("spawn-fcgi"),
            arguments: ["-n"] + socketArguments + ["--", binary,
                        "--redis-url", redisURL, "--log-file", logFile(address: address).path] + extraArguments,
            logFile: directory.appendingPathComponent("spawn-\(Self.fileName(address)).log"))
        let listening: Bool
        if let socketPath { listening = UnixSocketProbe.waitUntilListening(socketPath) }
        else { listening = FreePort.waitUntilListening(Int(address.split(separator: ":").last ?? "") ?? 0) }
        guard listening else { throw TestSupportError.didNotStart("session-fcgi on \(address)") }
    }

    public func logFile(port: Int) -> URL {
        logFile(address: "127.0.0.1:\(port)")
    }

    public func logFile(address: String) -> URL {
        directory.appendingPathComponent("fcgi-\(Self.fileName(address)).log")
    }

    private static func fileName(_ address: String) -> String {
        if address.hasPrefix("unix:") { return URL(fileURLWithPath: String(address.dropFirst(5))).lastPathComponent }
        return address.split(separator: ":").last.map(String.init) ?? address
    }

    /// Kills the instance on `port` at once (SIGKILL), as a crash would.
    public func killInstance(port: Int) {
        instances["127.0.0.1:\(port)"]?.kill9()
        instances["127.0.0.1:\(port)"] = nil
    }

    /// Stops the instance on `port` with SIGTERM and returns whether it exited by itself.
    public func terminateInstance(port: Int) -> Int32? {
        guard let instance = instances["127.0.0.1:\(port)"] else { return nil }
        instance.stop(signal: SIGTERM, timeout: 10)
        instances["127.0.0.1:\(port)"] = nil
        return instance.process.isRunning ? nil : instance.process.terminationStatus
    }

    /// Freezes the instance at `address` (SIGSTOP), as a hang would: nginx can still connect
    /// and send requests, and nothing answers them.
    public func pauseInstance(address: String) {
        instances[address]?.pause()
    }

    /// Lets a paused instance go on (SIGCONT).
    public func resumeInstance(address: String) {
        instances[address]?.resume()
    }

    public func instancePID(port: Int) -> Int32? { instances["127.0.0.1:\(port)"]?.pid }

    public func instancePID(address: String) -> Int32? { instances[address]?.pid }

    /// nginx's folder: the rendered nginx.conf, its logs, the certificate of an HTTPS stack.
    public var nginxDirectory: URL { directory.appendingPathComponent("nginx") }

    /// nginx's access log (format `session_store`: see the template; `AccessLog` reads it).
    public var accessLog: URL { nginxDirectory.appendingPathComponent("nginx-access.log") }

    /// nginx's error log.
    public var errorLog: URL { nginxDirectory.appendingPathComponent("nginx-error.log") }

    /// `http://127.0.0.1:PORT` or `https://…`.
    public var baseURL: String { "\(https ? "https" : "http")://127.0.0.1:\(nginxPort)" }

    private func startNginx() throws {
        let stateDirectory = nginxDirectory
        try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        var settings: [String: String?] = ["LISTEN": "127.0.0.1:\(nginxPort)", "FCGI_ADDRESSES": instanceAddresses.joined(separator: " "),
                                           "NGINX_WORKERS": "2", "APP_UPSTREAM": "127.0.0.1:\(appPort)", "TLS_CERT": nil, "TLS_KEY": nil]
        if https {
            let (certificate, key) = try makeCertificate(in: stateDirectory)
            settings["TLS_CERT"] = certificate.path
            settings["TLS_KEY"] = key.path
        }
        nginx = try NginxTemplate.start(in: stateDirectory, settings: settings, port: nginxPort, errorLog: errorLog)
    }

    /// A self-signed certificate for 127.0.0.1 and its key, made with openssl.
    private func makeCertificate(in folder: URL) throws -> (certificate: URL, key: URL) {
        let certificate = folder.appendingPathComponent("tls-cert.pem")
        let key = folder.appendingPathComponent("tls-key.pem")
        let openssl = try ManagedProcess(
            name: "openssl", executable: Paths.tool("openssl"),
            arguments: ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key.path, "-out", certificate.path])
        openssl.process.waitUntilExit()
        guard openssl.process.terminationStatus == 0 else { throw TestSupportError.didNotStart("openssl req") }
        return (certificate, key)
    }

    /// `GET path` through nginx (over TLS with curl when the stack serves HTTPS).
    public func get(_ path: String, cookie: String? = nil, headers: [(String, String)] = []) throws -> HTTPResponse {
        if https {
            var all = headers
            if let cookie { all.append(("Cookie", cookie)) }
            return try Curl.request(baseURL + path, headers: all)
        }
        return try HTTPClient.get(port: nginxPort, path: path, cookie: cookie, headers: headers)
    }

    /// Stops nginx, the instances and Redis, by pid.
    public func stop() {
        nginx?.stop(signal: SIGQUIT)
        nginx = nil
        for (_, instance) in instances { instance.stop() }
        instances = [:]
        redis.stop()
        deployment?.stop()
    }

    // MARK: - Inspecting the Redis the instances use (any SESSION_TEST_REDIS mode)

    /// One command where `key` lives.
    @discardableResult
    public func redisSend(_ command: RedisCommand, key: String) throws -> RedisReply {
        if let deployment { return try deployment.send(command, key: key) }
        return try redis.connection().send(command)
    }

    /// Resets `INFO commandstats` wherever the instances' commands run.
    public func resetRedisStatistics() throws {
        if let deployment { try deployment.resetStatistics() } else { try redis.resetStatistics() }
    }

    /// Calls per command wherever the instances' commands run (summed over masters).
    public func redisCommandCalls() throws -> [String: Int] {
        if let deployment { return try deployment.commandCalls() }
        return try redis.commandCalls()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
