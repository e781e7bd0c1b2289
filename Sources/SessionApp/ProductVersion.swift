import RedisClient

/// This release of `session-fcgi`: printed by `--version`, logged at start and exported as
/// `session_build_info`, so an operator can tell which build each instance runs.
public enum ProductVersion {
    /// The release number (semantic versioning); changed here when a release is made.
    public static let number = "0.1.0"

    /// `session-fcgi 0.1.0 (hiredis 0.14.1)`: the release and the C client it was built with.
    public static var line: String { "session-fcgi \(number) (hiredis \(hiredisVersion))" }

    /// The Prometheus gauge that names the build, always 1.
    static var metric: String {
        "# HELP session_build_info The running build (always 1).\n# TYPE session_build_info gauge\n"
            + "session_build_info{version=\"\(number)\",hiredis=\"\(hiredisVersion)\"} 1\n"
    }
}
