import RedisClient
import SessionCrypto

/// This release of `session-fcgi`: printed by `--version`, logged at start and exported as
/// `session_build_info`, so an operator can tell which build each instance runs.
public enum ProductVersion {
    /// The release number (semantic versioning); changed here when a release is made.
    public static let number = "0.1.0"

    /// The first 12 hex digits of the SHA-256 of the running executable, which
    /// `sha256sum /usr/local/bin/session-fcgi` starts with: it tells two builds apart where
    /// the release number does not (a rolling upgrade between releases); `unknown` when the
    /// executable cannot be read.
    public static let build: String = {
        guard let bytes = try? ConfigurationFile.bytes(at: "/proc/self/exe", limit: 1 << 30) else { return "unknown" }
        return SessionCrypto.sha256(bytes).prefix(6).map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]], as: UTF8.self)
        }.joined()
    }()

    /// `session-fcgi 0.1.0 (build 1a2b3c4d5e6f, hiredis 0.14.1)`: the release, the build and
    /// the C client it was built with.
    public static var line: String { "session-fcgi \(number) (build \(build), hiredis \(hiredisVersion))" }

    /// The Prometheus gauge that names the build, always 1.
    static var metric: String {
        "# HELP session_build_info The running build (always 1).\n# TYPE session_build_info gauge\n"
            + "session_build_info{version=\"\(number)\",build=\"\(build)\",hiredis=\"\(hiredisVersion)\"} 1\n"
    }
}
