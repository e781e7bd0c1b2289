import Foundation
import XCTest
import RedisClient
import TestSupport

/// `RedisClient` on a real master, replica and three Sentinels that all speak TLS only
/// (replication and the Sentinels' own links over TLS too).
final class RedisTLSSentinelTests: XCTestCase {
    func testResolutionWritesWaitsAndAFailoverOverTLS() throws {
        let material = try TLSMaterial()
        let setup = try RedisSentinelSetup(tls: RedisServerTLS(material: material))
        defer { setup.stop() }
        XCTAssertTrue(setup.url.hasPrefix("rediss-sentinel://"))
        let client = setup.client()
        XCTAssertEqual(try client.send(RedisCommand("SET", "tls:s", "1"), key: "tls:s"), .status("OK"))
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 2000), ReplicationOutcome(required: 1, acknowledged: 1))

        var untrusted = setup.configuration
        untrusted.tls = material.clientConfiguration(trustOtherCA: true)
        XCTAssertThrowsError(try RedisClient(configuration: untrusted).send(RedisCommand("GET", "tls:s"), key: "tls:s")) { error in
            let why: String
            switch error as? RedisError {
            case .tlsRefused(let reason)?, .connectFailed(let reason)?: why = reason
            default: return XCTFail("got \(error)")
            }
            XCTAssertTrue(why.contains("certificate"), why)
        }

        let old = try setup.killMaster()
        let promoted = try setup.waitForPromotion(from: old)
        var answered: RedisReply?
        try waitUntil("the client to reach the promoted master", timeout: 5) {
            answered = try? client.send(RedisCommand("GET", "tls:s"), key: "tls:s")
            return answered != nil
        }
        XCTAssertEqual(answered?.text, "1", "the replica had the write")
        XCTAssertEqual(try setup.connection(promoted).checked("ROLE").text ?? "master", "master")
    }
}
