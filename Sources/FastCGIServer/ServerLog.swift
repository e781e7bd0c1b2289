import Glibc

/// A minimal line logger writing to a file descriptor (stderr by default, or a file: under
/// spawn-fcgi stderr is /dev/null). Thread-safe: each line is one `write(2)` to an
/// `O_APPEND` descriptor. Never pass session ids or cookies to it.
public struct ServerLog: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warning, error
        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }
        var label: String {
            switch self {
            case .debug: return "debug"
            case .info: return "info"
            case .warning: return "warning"
            case .error: return "error"
            }
        }
    }

    private let descriptor: Int32
    public let minimumLevel: Level

    /// Logs to standard error.
    public init(minimumLevel: Level = .info) {
        descriptor = 2
        self.minimumLevel = minimumLevel
    }

    /// Logs to `path`, appending; returns `nil` if it cannot be opened.
    public init?(path: String, minimumLevel: Level = .info) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return nil }
        descriptor = fd
        self.minimumLevel = minimumLevel
    }

    public func log(_ level: Level, _ message: String) {
        guard level >= minimumLevel else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var line = "\(now.tv_sec).\(String(now.tv_nsec / 1_000_000).leftPadded(to: 3)) pid=\(getpid()) \(level.label): \(message)\n"
        line.withUTF8 { bytes in
            _ = Glibc.write(descriptor, bytes.baseAddress, bytes.count)
        }
    }

    public func info(_ message: String) { log(.info, message) }
    public func warning(_ message: String) { log(.warning, message) }
    public func error(_ message: String) { log(.error, message) }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
