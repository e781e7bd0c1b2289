import Foundation
import RedisClient

/// The Redis a `SessionStack` starts when the test brings none, chosen for the whole run by the
/// environment variable `SESSION_TEST_REDIS`, so the same end-to-end suites run against each
/// way the data tier can be secured (`deploy/test` runs the `/count` and lifecycle suites in
/// every mode):
///
/// - `plain` (default): TCP, no password;
/// - `tls`: TLS only; the instances trust the test CA;
/// - `mtls`: TLS only with client certificates required; the instances present one;
/// - `acl`: `deploy/redis/session-store.acl` enforced (`--aclfile`, the default user off); the
///   instances log in as `session-store` with the password from a file, the tests' own
///   inspection as a separate admin user.
public struct EndToEndRedis: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        case plain, tls, mtls, acl
    }

    public let server: RedisServerProcess
    /// What the instances are given: `--redis-url`.
    public let url: String
    /// And these options (TLS files, the password file).
    public let instanceArguments: [String]

    /// The mode `SESSION_TEST_REDIS` names (`plain` when unset).
    public static var mode: Mode {
        get throws {
            let name = ProcessInfo.processInfo.environment["SESSION_TEST_REDIS"] ?? "plain"
            guard let mode = Mode(rawValue: name.isEmpty ? "plain" : name) else {
                throw TestSupportError.protocolError("SESSION_TEST_REDIS=\(name): expected plain, tls, mtls or acl")
            }
            return mode
        }
    }

    /// Starts a server for `mode` (default: the environment's).
    public static func start(_ mode: Mode? = nil) throws -> EndToEndRedis {
        switch try mode ?? Self.mode {
        case .plain:
            let server = try RedisServerProcess()
            return EndToEndRedis(server: server, url: server.url, instanceArguments: [])
        case .tls, .mtls:
            let required = try mode ?? Self.mode
            let material = try sharedMaterial()
            let tls = RedisServerTLS(material: material, clientCertificates: required == .mtls ? .yes : .optional)
            let server = try RedisServerProcess(tls: tls)
            var arguments = ["--redis-tls-ca-file", material.caFile]
            if required == .mtls {
                arguments += ["--redis-tls-cert-file", material.clientCertificateFile, "--redis-tls-key-file", material.clientKeyFile]
            }
            return EndToEndRedis(server: server, url: server.url, instanceArguments: arguments)
        case .acl:
            let folder = try Paths.temporaryDirectory("acl")
            let password = "app-\(UUID().uuidString)"
            let admin = RedisTestCredentials(username: "test-admin", password: "admin-\(UUID().uuidString)")
            let shipped = try String(contentsOf: Paths.repositoryRoot.appendingPathComponent("deploy/redis/session-store.acl"), encoding: .utf8)
            let placeholder = "#" + String(repeating: "0", count: 64)
            guard shipped.contains(placeholder) else { throw TestSupportError.protocolError("deploy/redis/session-store.acl has no password placeholder") }
            let acl = folder.appendingPathComponent("users.acl")
            try (shipped.replacingOccurrences(of: placeholder, with: ">" + password)
                 + "user \(admin.username) on >\(admin.password) ~* &* +@all\n").write(to: acl, atomically: true, encoding: .utf8)
            let passwordFile = folder.appendingPathComponent("redis-password")
            try (password + "\n").write(to: passwordFile, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: passwordFile.path)
            let server = try RedisServerProcess(arguments: ["--aclfile", acl.path], admin: admin)
            return EndToEndRedis(server: server, url: "redis://session-store:@127.0.0.1:\(server.port)",
                                 instanceArguments: ["--redis-password-file", passwordFile.path])
        }
    }

    /// One set of certificates for the whole run (making them takes a moment).
    private static func sharedMaterial() throws -> TLSMaterial {
        try materialLock.withLock {
            if let material = material { return material }
            let made = try TLSMaterial()
            material = made
            return made
        }
    }

    private static let materialLock = NSLock()
    nonisolated(unsafe) private static var material: TLSMaterial?
}
