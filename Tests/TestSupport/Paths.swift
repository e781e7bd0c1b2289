import Foundation

/// Locations inside the repository and the build, for tests that run real processes.
public enum Paths {
    /// The repository root (two folders above this file).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `session-fcgi` binary built beside the test bundle (`SESSION_FCGI_BIN` overrides).
    public static var sessionFCGIBinary: String {
        if let override = ProcessInfo.processInfo.environment["SESSION_FCGI_BIN"] { return override }
        var directory = URL(fileURLWithPath: Bundle.main.bundlePath)
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("session-fcgi").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        for configuration in ["debug", "release"] {
            let candidate = repositoryRoot.appendingPathComponent(".build/\(configuration)/session-fcgi").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return repositoryRoot.appendingPathComponent(".build/debug/session-fcgi").path
    }

    /// A new empty temporary folder.
    public static func temporaryDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("session-store-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Finds an executable on the usual system paths.
    public static func tool(_ name: String) -> String {
        for directory in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/sbin", "/bin"] {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return name
    }
}
