import Foundation

/// The whole service on free loopback ports: a private redis-server, `instanceCount`
/// session-fcgi instances started by spawn-fcgi, and nginx in front, rendered from
/// `nginx/session-store.conf.template`. Everything is stopped by pid when the stack goes away.
public final class SessionStack: @unchecked Sendable {
    // @unchecked: used from one test at a time; the mutable instance list is only changed by
    // the owning test (kill/start), never concurrently with requests that read it.
    public let redis: RedisServerProcess
    public let nginxPort: Int
    public let instancePorts: [Int]
    /// Port of the demo second upstream behind the gateway (`/app/`).
    public let appPort: Int
    public let directory: URL
    public let extraArguments: [String]
    private var instances: [Int: ManagedProcess] = [:]
    private var nginx: ManagedProcess?

    public init(instanceCount: Int = 2, threads: Int = 8, extraArguments: [String] = []) throws {
        directory = try Paths.temporaryDirectory("stack")
        redis = try RedisServerProcess()
        nginxPort = FreePort.next()
        appPort = FreePort.next()
        instancePorts = (0..<instanceCount).map { _ in FreePort.next() }
        self.extraArguments = ["--threads", String(threads)] + extraArguments
        for port in instancePorts { try startInstance(port: port) }
        try startNginx()
    }

    /// Starts (or restarts) the instance on `port` through spawn-fcgi.
    public func startInstance(port: Int) throws {
        let binary = Paths.sessionFCGIBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestSupportError.didNotStart("session-fcgi: no binary at \(binary) (swift build first)")
        }
        // -n: spawn-fcgi binds the socket and execs the app in its own process, so the pid we
        // hold is the instance's.
        instances[port] = try ManagedProcess(
            name: "session-fcgi:\(port)", executable: Paths.tool("spawn-fcgi"),
            arguments: ["-n", "-a", "127.0.0.1", "-p", String(port), "--", binary,
                        "--redis-url", redis.url, "--log-file", logFile(port: port).path] + extraArguments,
            logFile: directory.appendingPathComponent("spawn-\(port).log"))
        guard FreePort.waitUntilListening(port) else { throw TestSupportError.didNotStart("session-fcgi on \(port)") }
    }

    public func logFile(port: Int) -> URL {
        directory.appendingPathComponent("fcgi-\(port).log")
    }

    /// Kills the instance on `port` at once (SIGKILL), as a crash would.
    public func killInstance(port: Int) {
        instances[port]?.kill9()
        instances[port] = nil
    }

    /// Stops the instance on `port` with SIGTERM and returns whether it exited by itself.
    public func terminateInstance(port: Int) -> Int32? {
        guard let instance = instances[port] else { return nil }
        instance.stop(signal: SIGTERM, timeout: 10)
        instances[port] = nil
        return instance.process.isRunning ? nil : instance.process.terminationStatus
    }

    public func instancePID(port: Int) -> Int32? { instances[port]?.pid }

    private func startNginx() throws {
        let stateDirectory = directory.appendingPathComponent("nginx")
        try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        let render = Process()
        render.executableURL = Paths.repositoryRoot.appendingPathComponent("nginx/render")
        var environment = ProcessInfo.processInfo.environment
        environment["STATE_DIR"] = stateDirectory.path
        environment["LISTEN"] = "127.0.0.1:\(nginxPort)"
        environment["FCGI_ADDRESSES"] = instancePorts.map { "127.0.0.1:\($0)" }.joined(separator: " ")
        environment["NGINX_WORKERS"] = "2"
        environment["APP_UPSTREAM"] = "127.0.0.1:\(appPort)"
        render.environment = environment
        let output = Pipe()
        render.standardOutput = output
        try render.run()
        let config = output.fileHandleForReading.readDataToEndOfFile()
        render.waitUntilExit()
        guard render.terminationStatus == 0 else { throw TestSupportError.didNotStart("nginx/render") }
        let configFile = stateDirectory.appendingPathComponent("nginx.conf")
        try config.write(to: configFile)
        nginx = try ManagedProcess(
            name: "nginx", executable: Paths.tool("nginx"),
            arguments: ["-p", stateDirectory.path, "-c", configFile.path, "-g", "daemon off;"],
            logFile: stateDirectory.appendingPathComponent("nginx-stdout.log"))
        guard FreePort.waitUntilListening(nginxPort) else { throw TestSupportError.didNotStart("nginx on \(nginxPort)") }
    }

    /// `GET path` through nginx.
    public func get(_ path: String, cookie: String? = nil, headers: [(String, String)] = []) throws -> HTTPResponse {
        try HTTPClient.get(port: nginxPort, path: path, cookie: cookie, headers: headers)
    }

    /// Stops nginx, the instances and Redis, by pid.
    public func stop() {
        nginx?.stop(signal: SIGQUIT)
        nginx = nil
        for (_, instance) in instances { instance.stop() }
        instances = [:]
        redis.stop()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
