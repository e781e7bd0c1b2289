import Foundation

/// nginx started from `nginx/session-store.conf.template`, rendered by `nginx/render` into its
/// own state folder: what every test front end (`SessionStack`, `NginxFrontend`) runs.
enum NginxTemplate {
    /// Renders the template with `settings` (render's variables; `nil` removes one) on top of
    /// this process's environment, writes `nginx.conf` into `stateDirectory` and starts nginx in
    /// the foreground; returns once `port` accepts connections.
    static func start(in stateDirectory: URL, settings: [String: String?], port: Int, errorLog: URL? = nil) throws -> ManagedProcess {
        try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        let render = Process()
        render.executableURL = Paths.repositoryRoot.appendingPathComponent("nginx/render")
        var environment = ProcessInfo.processInfo.environment
        environment["STATE_DIR"] = stateDirectory.path
        for (name, value) in settings { environment[name] = value }
        render.environment = environment
        let output = Pipe()
        render.standardOutput = output
        try render.run()
        let config = output.fileHandleForReading.readDataToEndOfFile()
        render.waitUntilExit()
        guard render.terminationStatus == 0 else { throw TestSupportError.didNotStart("nginx/render") }
        let configFile = stateDirectory.appendingPathComponent("nginx.conf")
        try config.write(to: configFile)
        let nginx = try ManagedProcess(
            name: "nginx", executable: Paths.tool("nginx"),
            arguments: ["-p", stateDirectory.path, "-c", configFile.path] + (errorLog.map { ["-e", $0.path] } ?? []) + ["-g", "daemon off;"],
            logFile: stateDirectory.appendingPathComponent("nginx-stdout.log"))
        guard FreePort.waitUntilListening(port) else { throw TestSupportError.didNotStart("nginx on \(port)") }
        return nginx
    }
}
