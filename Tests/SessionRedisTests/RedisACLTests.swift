import Foundation
import XCTest
import RedisClient
import SessionCore
@testable import SessionRedis
import TestSupport

/// `deploy/redis/session-store.acl` enforced by a real redis-server (`--aclfile`): the store
/// contract passes through the `session-store` user with the default prefixes, and what the
/// project never sends — other commands, other keys, the default user — is refused.
final class RedisACLTests: XCTestCase {
    nonisolated(unsafe) private static var shared: RedisServerProcess?
    nonisolated(unsafe) private static var startError: Error?
    nonisolated(unsafe) private static var folder: URL?
    /// Test-only passwords: in a file and in memory, never on a command line.
    private static let password = "test-\(UUID().uuidString)"
    private static let admin = RedisTestCredentials(username: "test-admin", password: "admin-\(UUID().uuidString)")

    override class func setUp() {
        do {
            let folder = try Paths.temporaryDirectory("acl")
            Self.folder = folder
            let shipped = try String(contentsOf: Paths.repositoryRoot.appendingPathComponent("deploy/redis/session-store.acl"), encoding: .utf8)
            let placeholder = "#" + String(repeating: "0", count: 64)
            guard shipped.contains(placeholder) else { throw TestSupportError.protocolError("the shipped ACL has no password placeholder") }
            // The operator's step: the placeholder replaced by the real password (here in clear
            // text, which the ACL file format also takes). A test-only admin inspects.
            let file = shipped.replacingOccurrences(of: placeholder, with: ">" + password)
                + "user \(admin.username) on >\(admin.password) ~* &* +@all\n"
            let path = folder.appendingPathComponent("users.acl")
            try file.write(to: path, atomically: true, encoding: .utf8)
            shared = try RedisServerProcess(arguments: ["--aclfile", path.path], admin: admin)
        } catch {
            startError = error
        }
    }

    override class func tearDown() {
        shared?.stop()
        shared = nil
        if let folder { try? FileManager.default.removeItem(at: folder) }
    }

    private var server: RedisServerProcess {
        get throws {
            if let error = Self.startError { throw error }
            return try XCTUnwrap(Self.shared)
        }
    }

    /// The project's user, as the application connects.
    private var configuration: RedisConfiguration {
        get throws {
            RedisConfiguration(topology: .single(.tcp(host: "127.0.0.1", port: try server.port)), username: "session-store", password: Self.password)
        }
    }

    private func contract() throws -> SessionStoreContract<RedisSessionStore> {
        let store = RedisSessionStore(client: RedisClient(configuration: try configuration))
        XCTAssertEqual(store.keyPrefix, "sid_")
        XCTAssertEqual(store.userKeyPrefix, "sidu_")
        let inspector = try server.connection()
        return SessionStoreContract(store: store) { try inspector.send(RedisCommand("EXISTS", store.key(for: $0))).integer == 1 }
    }

    func testContractCreateThenIncrement() throws { try contract().createThenIncrement() }
    func testContractWritesToAnUnknownIDWriteNothing() throws { try contract().writesToAnUnknownIDWriteNothing() }
    func testContractCreateRefusesAnExistingID() throws { try contract().createRefusesAnExistingID() }
    func testContractLoad() throws { try contract().loadReturnsFieldsWithTimesAndCanCountAVisit() }
    func testContractLoadMany() throws { try contract().loadManyReturnsLiveSessionsInOrder() }
    func testContractUpdate() throws { try contract().updateIsADeltaWithinLimits() }
    func testContractLimitsOnEveryPath() throws { try contract().limitsHoldAfterCreateWithFieldsAndAfterIncrements() }
    func testContractNoResurrection() throws { try contract().writesAfterDestroyDoNotResurrect() }
    func testContractAliasRotation() throws { try contract().aliasRotationPointsAtTheNewIDAndHoldsNoData() }
    func testContractSupersededRotation() throws { try contract().supersededRotationLeadsNowhere() }
    func testContractRotationWithoutGrace() throws { try contract().rotationWithoutGraceEndsTheOldID() }
    func testContractUserIndex() throws { try contract().userIndexHoldsEntriesUntilUnindexedOrRevoked() }
    func testContractHealth() throws { try contract().healthyStorePassesTheHealthCheck() }
    func testContractNonceClaimedOnce() throws { try contract().aNonceIsClaimedOnceWithinItsLifetimeOnTheStoresClock() }
    func testContractLoginAttempts() throws { try contract().loginAttemptsAreCountedAgainstALimitWithinAWindow() }

    /// The paths the contract does not take: scripts reloaded with `EVAL` after the server lost
    /// them, `WAIT` and `ROLE` for replication, `SELECT`, and the cluster commands.
    func testTheRestOfWhatTheClientSendsIsAllowed() throws {
        let server = try server
        let store = RedisSessionStore(client: RedisClient(configuration: try configuration), waitReplicas: 1, waitTimeoutMilliseconds: 50)
        let id = SessionID.generate()
        XCTAssertEqual(try store.create(id, fields: [("count", "1")], timeouts: SessionTimeouts(), limits: SessionLimits()).isCreated, true)
        try server.connection().checked("SCRIPT", "FLUSH")
        XCTAssertEqual(try store.increment("count", by: 1, in: id, timeouts: SessionTimeouts()), .found(2), "EVAL after NOSCRIPT")
        XCTAssertEqual(try store.destroy([id]), 1)
        XCTAssertEqual(try store.confirmWrites(), .unconfirmed(required: 1, acknowledged: 0), "WAIT is allowed (and no replica answers)")
        let auto = RedisSessionStore(client: RedisClient(configuration: try configuration))
        XCTAssertEqual(try auto.destroy([id]), 0)
        XCTAssertEqual(try auto.confirmWrites(), .notReplicated, "ROLE is allowed and shows no replica")

        var database = try configuration
        database.database = 3
        XCTAssertEqual(try RedisClient(configuration: database).send(RedisCommand("PING"), key: nil), .status("PONG"), "SELECT is allowed")

        let user = RedisConnection(endpoint: try configuration.endpoint(.tcp(host: "127.0.0.1", port: server.port)))
        // Allowed, so the answer is the server's own, not NOPERM (this server is no cluster).
        for command in [RedisCommand("CLUSTER", "SLOTS"), RedisCommand("ASKING")] {
            XCTAssertNotEqual(try user.send(command).serverError?.code, "NOPERM", "\(command.arguments) is refused")
        }
    }

    func testWhatTheProjectNeverSendsIsRefused() throws {
        let server = try server
        let user = RedisConnection(endpoint: try configuration.endpoint(.tcp(host: "127.0.0.1", port: server.port)))
        let forbidden: [[String]] = [
            ["FLUSHALL"], ["FLUSHDB"], ["KEYS", "*"], ["SCAN", "0"], ["CONFIG", "GET", "*"], ["CONFIG", "SET", "save", ""],
            ["DEBUG", "SLEEP", "0"], ["MONITOR"], ["SHUTDOWN"], ["ACL", "LIST"], ["CLIENT", "LIST"], ["INFO"], ["SCRIPT", "FLUSH"],
            ["REPLICAOF", "NO", "ONE"], ["MIGRATE", "127.0.0.1", "1", "sid_x", "0", "10"], ["SET", "sid_x", "1"], ["HGETALL", "other"],
            ["GET", "other"], ["DEL", "other"], ["EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "sid_x"],
            ["EVAL", "return redis.call('GET', KEYS[1])", "1", "other"], ["EVAL", "return redis.call('DEL', 'other')", "0"],
            ["PUBLISH", "channel", "x"], ["FUNCTION", "LIST"], ["MODULE", "LIST"],
        ]
        for arguments in forbidden {
            let reply = try user.send(RedisCommand(arguments: arguments))
            // NOPERM at the top level; inside a script, the ACL's refusal as a script error.
            let refusals = ["NOPERM", "can't run this command", "can't access at least one of the keys"]
            XCTAssertTrue(refusals.contains { reply.serverError?.message.contains($0) == true }, "\(arguments.joined(separator: " ")) answered \(reply)")
        }
        // The user's own keys are fine with the commands it has.
        XCTAssertEqual(try user.send(RedisCommand("GET", "sid_nothing")), .null)
        XCTAssertEqual(try user.send(RedisCommand("GET", "sidu_{nobody}:gen")), .null)

        // The default user is off: no command without logging in, and no logging in as it.
        let anonymous = RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: server.port)))
        XCTAssertEqual(try anonymous.send(RedisCommand("PING")).serverError?.code, "NOAUTH")
        XCTAssertEqual(try anonymous.send(RedisCommand("AUTH", "default", "")).serverError?.code, "WRONGPASS")
        let wrong = RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: server.port), username: "session-store",
                                                            password: "not-the-password"))
        XCTAssertThrowsError(try wrong.send(RedisCommand("PING")))
    }

    /// The shipped file, unchanged, lets nobody in: the placeholder is a hash no password has.
    func testTheShippedFileUnchangedFailsClosed() throws {
        let folder = try Paths.temporaryDirectory("acl-shipped")
        defer { try? FileManager.default.removeItem(at: folder) }
        let shipped = try String(contentsOf: Paths.repositoryRoot.appendingPathComponent("deploy/redis/session-store.acl"), encoding: .utf8)
        let path = folder.appendingPathComponent("users.acl")
        try (shipped + "user \(Self.admin.username) on >\(Self.admin.password) ~* &* +@all\n").write(to: path, atomically: true, encoding: .utf8)
        let server = try RedisServerProcess(arguments: ["--aclfile", path.path], admin: Self.admin)
        defer { server.stop() }
        XCTAssertEqual(try server.connection().checked("PING"), .status("PONG"), "the file loads")
        for guess in ["", "password", "CHANGE-ME", String(repeating: "0", count: 64)] {
            let connection = RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: server.port), username: "session-store",
                                                                     password: guess))
            XCTAssertThrowsError(try connection.send(RedisCommand("PING")), "logged in with '\(guess)'")
        }
    }
}
