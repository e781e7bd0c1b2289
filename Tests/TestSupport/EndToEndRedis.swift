import Foundation
import RedisClient

/// The Redis a `SessionStack` starts when the test brings none, chosen for the whole run by the
/// environment variable `SESSION_TEST_REDIS`, so the same end-to-end suites run against each
/// Redis deployment the service supports (`deploy/test` runs the `/count` and lifecycle suites
/// in every mode):
///
/// - `plain` (default): one server, TCP, no password;
/// - `tls`: TLS only; the instances trust the test CA;
/// - `mtls`: TLS only with client certificates required; the instances present one;
/// - `acl`: `deploy/redis/session-store.acl` enforced (`--aclfile`, the default user off); the
///   instances log in as `session-store` with the password from a file, the tests' own
///   inspection as a separate admin user;
/// - `cluster`: a 3-master, 3-replica Redis Cluster;
/// - `sentinel`: a master, a replica and three Sentinels.
///
/// Tests inspect Redis through `send(_:key:)`, `resetStatistics()` and `commandCalls()`, which
/// work on every mode (routed by key; statistics summed over the masters).
public final class EndToEndRedis: @unchecked Sendable {
    // @unchecked: built once, then only read (the topologies' own helpers are used from the
    // test's thread).
    public enum Mode: String, Sendable, CaseIterable {
        case plain, tls, mtls, acl, cluster, sentinel
    }

    public let mode: Mode
    /// The one server (`plain`, `tls`, `mtls`, `acl`); a stand-by server in the other modes,
    /// which nothing uses.
    public let server: RedisServerProcess
    public let cluster: RedisClusterProcess?
    public let sentinel: RedisSentinelSetup?
    /// What the instances are given: `--redis-url`.
    public let url: String
    /// And these options (TLS files, the password file).
    public let instanceArguments: [String]

    /// The mode `SESSION_TEST_REDIS` names (`plain` when unset).
    public static var environmentMode: Mode {
        get throws {
            let name = ProcessInfo.processInfo.environment["SESSION_TEST_REDIS"] ?? "plain"
            guard let mode = Mode(rawValue: name.isEmpty ? "plain" : name) else {
                throw TestSupportError.protocolError("SESSION_TEST_REDIS=\(name): expected one of \(Mode.allCases.map(\.rawValue))")
            }
            return mode
        }
    }

    /// Starts a deployment for `mode` (default: the environment's).
    public init(_ mode: Mode? = nil) throws {
        let mode = try mode ?? Self.environmentMode
        self.mode = mode
        var cluster: RedisClusterProcess?, sentinel: RedisSentinelSetup?
        switch mode {
        case .plain:
            server = try RedisServerProcess()
            url = server.url
            instanceArguments = []
        case .tls, .mtls:
            let material = try Self.sharedMaterial()
            server = try RedisServerProcess(tls: RedisServerTLS(material: material, clientCertificates: mode == .mtls ? .yes : .optional))
            url = server.url
            var arguments = ["--redis-tls-ca-file", material.caFile]
            if mode == .mtls {
                arguments += ["--redis-tls-cert-file", material.clientCertificateFile, "--redis-tls-key-file", material.clientKeyFile]
            }
            instanceArguments = arguments
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
            server = try RedisServerProcess(arguments: ["--aclfile", acl.path], admin: admin)
            url = "redis://session-store:@127.0.0.1:\(server.port)"
            instanceArguments = ["--redis-password-file", passwordFile.path]
        case .cluster:
            let started = try RedisClusterProcess()
            cluster = started
            server = try RedisServerProcess()
            url = started.url
            instanceArguments = []
        case .sentinel:
            let started = try RedisSentinelSetup()
            sentinel = started
            server = try RedisServerProcess()
            url = started.url
            instanceArguments = []
        }
        self.cluster = cluster
        self.sentinel = sentinel
    }

    /// A client of the whole deployment for the test's own inspection (admin user, TLS as set).
    public func client() -> RedisClient {
        if let cluster { return cluster.client() }
        if let sentinel { return sentinel.client() }
        return server.client()
    }

    /// One command, sent where `key` lives.
    @discardableResult
    public func send(_ command: RedisCommand, key: String) throws -> RedisReply {
        try client().send(command, key: key)
    }

    /// Connections to every master: where every command the service sends is counted.
    public func masterConnections() throws -> [RedisConnection] {
        if let cluster { return try cluster.masters().map { cluster.connection($0) } }
        if let sentinel { return [sentinel.connection(try sentinel.currentMaster())] }
        return [server.connection()]
    }

    /// Resets `INFO commandstats` on every master.
    public func resetStatistics() throws {
        for connection in try masterConnections() { _ = try connection.send(RedisCommand("CONFIG", "RESETSTAT")) }
    }

    /// Calls per command from `INFO commandstats`, summed over the masters.
    public func commandCalls() throws -> [String: Int] {
        var total: [String: Int] = [:]
        for connection in try masterConnections() {
            for (name, calls) in try connection.commandCalls() { total[name, default: 0] += calls }
        }
        return total
    }

    /// Stops every process of the deployment.
    public func stop() {
        cluster?.stop()
        sentinel?.stop()
        server.stop()
    }

    /// One set of certificates for the whole run (making them takes a moment).
    private static func sharedMaterial() throws -> TLSMaterial {
        try materialLock.withLock {
            if let material { return material }
            let made = try TLSMaterial()
            material = made
            return made
        }
    }

    private static let materialLock = NSLock()
    nonisolated(unsafe) private static var material: TLSMaterial?
}
