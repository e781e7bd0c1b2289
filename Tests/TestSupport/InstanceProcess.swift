import Foundation

/// One session-fcgi instance on its own (no nginx), for tests of its connection handling:
/// started by spawn-fcgi on a TCP port or a Unix socket (the inherited fd 0), or binding
/// `--listen` itself. Stopped by pid.
public final class InstanceProcess {
    public enum Socket: Sendable {
        /// spawn-fcgi binds 127.0.0.1:port and hands the socket over on fd 0.
        case spawnedTCP(port: Int)
        /// spawn-fcgi binds a Unix socket and hands it over on fd 0.
        case spawnedUnix(path: String)
        /// session-fcgi binds `--listen ADDRESS` itself.
        case listen(String)
    }

    public let socket: Socket
    public let logFile: URL
    public let process: ManagedProcess

    public init(socket: Socket, redisURL: String, arguments: [String], directory: URL) throws {
        self.socket = socket
        let binary = Paths.sessionFCGIBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestSupportError.didNotStart("session-fcgi: no binary at \(binary) (swift build first)")
        }
        let name = "\(getpid())-\(UUID().uuidString.prefix(8))"
        logFile = directory.appendingPathComponent("instance-\(name).log")
        let own = ["--redis-url", redisURL, "--log-file", logFile.path] + arguments
        switch socket {
        case .spawnedTCP(let port):
            process = try ManagedProcess(name: "session-fcgi:\(port)", executable: Paths.tool("spawn-fcgi"),
                                         arguments: ["-n", "-a", "127.0.0.1", "-p", String(port), "--", binary] + own,
                                         logFile: directory.appendingPathComponent("spawn-\(name).log"))
        case .spawnedUnix(let path):
            process = try ManagedProcess(name: "session-fcgi:\(path)", executable: Paths.tool("spawn-fcgi"),
                                         arguments: ["-n", "-s", path, "--", binary] + own,
                                         logFile: directory.appendingPathComponent("spawn-\(name).log"))
        case .listen(let address):
            process = try ManagedProcess(name: "session-fcgi:\(address)", executable: binary,
                                         arguments: ["--listen", address] + own,
                                         logFile: directory.appendingPathComponent("stderr-\(name).log"))
        }
        guard waitUntilServing() else { throw TestSupportError.didNotStart("session-fcgi on \(socket)") }
    }

    /// Waits for the "serving FastCGI" log line (and so for the socket).
    private func waitUntilServing(timeout: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log.contains("serving FastCGI") { return true }
            if !process.isRunning { return false }
            usleep(20_000)
        }
        return false
    }

    /// Waits up to `timeout` for a log line containing `text`.
    public func waitForLog(containing text: String, timeout: TimeInterval = 2) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log.contains(text) { return true }
            usleep(10_000)
        }
        return log.contains(text)
    }

    /// The instance's log so far.
    public var log: String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    /// Sends SIGTERM and waits up to `timeout`; returns the exit status and the seconds it took
    /// (status nil if it had to be killed).
    public func terminate(timeout: TimeInterval = 10) -> (status: Int32?, seconds: TimeInterval) {
        let started = Date()
        process.stop(signal: SIGTERM, timeout: timeout)
        let seconds = Date().timeIntervalSince(started)
        return (seconds < timeout ? process.process.terminationStatus : nil, seconds)
    }

    /// The counters of the shutdown summary line ("served N requests on M accepted connections; …").
    public var summary: [String: Int]? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("served ") && $0.contains("accepted connections") }) else {
            return nil
        }
        var result: [String: Int] = [:]
        let words = line.split(whereSeparator: { $0 == " " || $0 == ";" || $0 == "," })
        for (index, word) in words.enumerated() {
            guard let value = Int(word), index + 1 < words.count else { continue }
            result[String(words[index + 1])] = value
        }
        return result
    }
}
