import Foundation

/// nginx rendered from `nginx/session-store.conf.template` in front of instances the test
/// started itself, with extra server-level directives (e.g. `fastcgi_bind 127.0.0.2;`).
/// Stopped by pid.
public final class NginxFrontend {
    public let port: Int
    private let process: ManagedProcess

    public init(fastCGIAddresses: [String], serverDirectives: String = "", directory: URL) throws {
        port = FreePort.next()
        let stateDirectory = directory.appendingPathComponent("nginx-\(port)")
        try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        let render = Process()
        render.executableURL = Paths.repositoryRoot.appendingPathComponent("nginx/render")
        var environment = ProcessInfo.processInfo.environment
        environment["STATE_DIR"] = stateDirectory.path
        environment["LISTEN"] = "127.0.0.1:\(port)"
        environment["FCGI_ADDRESSES"] = fastCGIAddresses.joined(separator: " ")
        environment["NGINX_WORKERS"] = "2"
        environment["APP_UPSTREAM"] = "127.0.0.1:\(FreePort.next())"
        environment["EXTRA_LOCATIONS"] = serverDirectives
        render.environment = environment
        let output = Pipe()
        render.standardOutput = output
        try render.run()
        let config = output.fileHandleForReading.readDataToEndOfFile()
        render.waitUntilExit()
        guard render.terminationStatus == 0 else { throw TestSupportError.didNotStart("nginx/render") }
        let configFile = stateDirectory.appendingPathComponent("nginx.conf")
        try config.write(to: configFile)
        process = try ManagedProcess(
            name: "nginx", executable: Paths.tool("nginx"),
            arguments: ["-p", stateDirectory.path, "-c", configFile.path, "-g", "daemon off;"],
            logFile: stateDirectory.appendingPathComponent("nginx-stdout.log"))
        guard FreePort.waitUntilListening(port) else { throw TestSupportError.didNotStart("nginx on \(port)") }
    }

    public func get(_ path: String, cookie: String? = nil) throws -> HTTPResponse {
        try HTTPClient.get(port: port, path: path, cookie: cookie)
    }

    public func stop() { process.stop(signal: SIGQUIT) }

    deinit { stop() }
}
