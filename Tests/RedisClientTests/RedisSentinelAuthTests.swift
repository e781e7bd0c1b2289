import Foundation
import XCTest
import RedisClient
import TestSupport

/// Sentinels that require a password of their own (`requirepass` in sentinel.conf): the client
/// logs in to them with `sentinelPassword` (not the data nodes' password), follows a failover,
/// and without the password fails with the refusal itself (a configuration error, not an outage).
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
        // The refusal itself, not a connect failure: check-config and the store tell a password
        // out of step (exit 1, a 503 named as such) from Redis being away.
        func assertRefused(_ configuration: RedisConfiguration, _ what: String) {
            XCTAssertThrowsError(try RedisClient(configuration: configuration).send(RedisCommand("GET", "auth-key"), key: "auth-key")) { error in
                guard case .server(let refusal)? = error as? RedisError else { return XCTFail("\(what): \(error)") }
                XCTAssertTrue(refusal.refusesCredentials, "\(what): \(refusal)")
                XCTAssertTrue(refusal.message.contains("Sentinel"), "\(what): \(refusal)")
                // The advice names the Sentinels' option, not the data nodes' password (new-user
                // review s19: it sent the operator to --redis-password-file, which was right).
                XCTAssertTrue(refusal.fromSentinel, "\(what): \(refusal)")
                XCTAssertTrue(refusal.credentialAdvice.contains("--redis-sentinel-password-file"), refusal.credentialAdvice)
            }
        }
        assertRefused(anonymous, "no Sentinel password")
        var wrong = setup.configuration
        wrong.sentinelPassword = "not-it"
        assertRefused(wrong, "a wrong Sentinel password")

        // A failover is followed through the authenticated Sentinels.
        let old = try setup.killMaster()
        try setup.waitForPromotion(from: old)
        try waitUntil("the client writes to the new master", timeout: 15, interval: 0.1) { () throws -> Bool in
            (try? client.send(RedisCommand("SET", "auth-key", "2"), key: "auth-key")) == .status("OK")
        }
    }
}
