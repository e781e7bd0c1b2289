import Foundation

/// A child process that a test started and will stop by its pid (never by name).
public final class ManagedProcess: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read afterwards; Foundation's Process
    // is itself thread-safe for the calls used here (terminate, isRunning, pid).
    public let process: Process
    public let name: String

    /// Starts `executable` with `arguments`; output goes to `logFile` (or /dev/null).
    public init(name: String, executable: String, arguments: [String], environment: [String: String]? = nil, logFile: URL? = nil) throws {
        self.name = name
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let logFile {
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
            let handle = try FileHandle(forWritingTo: logFile)
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Sends `signal` and waits up to `timeout` for the exit, then SIGKILL. A paused process
    /// is resumed after the signal, so that it can act on it.
    public func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 10) {
        guard process.isRunning else { return }
        kill(pid, signal)
        kill(pid, SIGCONT)  // a paused process acts on the signal only once it runs again
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Stops the process where it stands (SIGSTOP), as a hang would: its sockets stay open and
    /// the kernel keeps queueing connections and requests for it. Returns once every thread
    /// has stopped (a signal is delivered asynchronously, and a thread still running could
    /// answer one more request).
    public func pause() {
        guard process.isRunning else { return }
        kill(pid, SIGSTOP)
        let deadline = Date().addingTimeInterval(2)
        while !allThreadsStopped() && Date() < deadline { usleep(1_000) }
    }

    /// Whether /proc shows every thread of the process stopped (state `T`).
    private func allThreadsStopped() -> Bool {
        let tasks = "/proc/\(pid)/task"
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: tasks), !threads.isEmpty else { return false }
        return threads.allSatisfy { thread in
            guard let stat = try? String(contentsOfFile: "\(tasks)/\(thread)/stat", encoding: .utf8),
                  let end = stat.lastIndex(of: ")") else { return false }
            return stat[stat.index(after: end)...].trimmingCharacters(in: .whitespaces).first == "T"
        }
    }

    /// Lets a paused process go on (SIGCONT).
    public func resume() {
        guard process.isRunning else { return }
        kill(pid, SIGCONT)
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    public func kill9() {
        guard process.isRunning else { return }
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}
