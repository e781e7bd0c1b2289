import Foundation
import XCTest
import RedisClient
import TestSupport

/// Sentinels that require a password of their own (`requirepass` in sentinel.conf): the client
/// logs in to them with `sentinelPassword` (not the data nodes' password), follows a failover,
/// and without the password fails with a connect error that names the refusal.
final class RedisSentinelAuthTests: XCTestCase {
    func testSentinelsWithAPasswordAreAskedWithIt() throws {
        let password = "sentinel-\(UUID().uuidString)"
        let setup = try RedisSentinelSetup(sentinelPassword: password)
        defer { setup.stop() }

        let client = setup.client()
        XCTAssertEqual(setup.configuration.sentinelPassword, password)
        XCTAssertEqual(try client.send(RedisCommand("SET", "auth-key", "1"), key: "auth-key"), .status("OK"))
        XCTAssertEqual(try setup.connection(try setup.currentMaster()).send(RedisCommand("GET", "auth-key")), .string(Array("1".utf8)))

        // Without it: refused, and the error says so rather than "no master".
        var anonymous = setup.configuration
        anonymous.sentinelPassword = nil
        XCTAssertThrowsError(try RedisClient(configuration: anonymous).send(RedisCommand("GET", "auth-key"), key: "auth-key")) { error in
            XCTAssertTrue("\(error)".contains("NOAUTH") || "\(error)".contains("auth"), "\(error)")
        }
        var wrong = setup.configuration
        wrong.sentinelPassword = "not-it"
        XCTAssertThrowsError(try RedisClient(configuration: wrong).send(RedisCommand("GET", "auth-key"), key: "auth-key"))

        // A failover is followed through the authenticated Sentinels.
        let old = try setup.killMaster()
        try setup.waitForPromotion(from: old)
        try waitUntil("the client writes to the new master", timeout: 15, interval: 0.1) { () throws -> Bool in
            (try? client.send(RedisCommand("SET", "auth-key", "2"), key: "auth-key")) == .status("OK")
        }
    }
}
