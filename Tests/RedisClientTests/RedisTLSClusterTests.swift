import Foundation
import XCTest
import RedisClient
import TestSupport

/// `RedisClient` on a real 3+3 cluster that speaks TLS only, requires client certificates and
/// runs its bus and replication over TLS: every node the client learns from `CLUSTER SLOTS`,
/// `MOVED` or `ASK` is reached over TLS with the same settings.
final class RedisTLSClusterTests: XCTestCase {
    nonisolated(unsafe) private static var shared: RedisClusterProcess?
    nonisolated(unsafe) private static var sharedMaterial: TLSMaterial?
    nonisolated(unsafe) private static var startError: Error?

    override class func setUp() {
        do {
            let material = try TLSMaterial()
            sharedMaterial = material
            shared = try RedisClusterProcess(tls: RedisServerTLS(material: material, clientCertificates: .yes))
        } catch {
            startError = error
        }
    }

    override class func tearDown() {
        shared?.stop()
        shared = nil
        sharedMaterial = nil
    }

    private var cluster: RedisClusterProcess {
        get throws {
            if let error = Self.startError { throw error }
            return try XCTUnwrap(Self.shared)
        }
    }

    override func setUpWithError() throws {
        try cluster.waitUntilHealthy()
    }

    func testEveryMasterAnswersOverTLSAndReplicatesOverTLS() throws {
        let cluster = try cluster
        XCTAssertTrue(cluster.url.hasPrefix("rediss-cluster://"))
        let client = cluster.client()
        for master in try cluster.masters() {
            let key = "{\(try cluster.hashTag(servedBy: master))}:tls"
            XCTAssertEqual(try client.send(RedisCommand("SET", key, "v"), key: key), .status("OK"))
            XCTAssertEqual(try client.send(RedisCommand("GET", key), key: key).text, "v")
        }
        XCTAssertEqual(try client.waitForReplicas(nil, timeoutMilliseconds: 2000), ReplicationOutcome(required: 1, acknowledged: 1))
        XCTAssertNoThrow(try client.checkHealth())
        XCTAssertEqual(client.statistics.moved, 0)
    }

    func testAskAndMovedLeadToTLSNodes() throws {
        let cluster = try cluster
        let masters = try cluster.masters()
        let prefix = "{\(try cluster.hashTag(servedBy: masters[1]))}:m"
        let keys = (0..<6).map { "\(prefix)\($0)" }
        let client = cluster.client()
        for key in keys { XCTAssertEqual(try client.send(RedisCommand("SET", key, key), key: key), .status("OK")) }
        let migration = try cluster.beginMigration(slot: HashSlot.of(keys[0]), to: masters[0])
        XCTAssertEqual(try cluster.migrateKeys(migration, batch: 3), 3)
        for key in keys { XCTAssertEqual(try client.send(RedisCommand("GET", key), key: key).text, key) }
        XCTAssertEqual(client.statistics.asked, 3)
        try cluster.finishMigration(migration)
        for key in keys { XCTAssertEqual(try client.send(RedisCommand("GET", key), key: key).text, key) }
        XCTAssertEqual(client.statistics.moved, 1, "one MOVED, then the map knows")
    }

    func testAnUnknownCAFailsClosedOnEveryNode() throws {
        let cluster = try cluster
        let material = try XCTUnwrap(Self.sharedMaterial)
        var configuration = cluster.configuration
        configuration.tls = material.clientConfiguration(clientCertificate: true, trustOtherCA: true)
        let client = RedisClient(configuration: configuration)
        XCTAssertThrowsError(try client.send(RedisCommand("GET", "k"), key: "k")) { error in
            let why: String
            switch error as? RedisError {
            case .tlsRefused(let reason)?, .connectFailed(let reason)?: why = reason
            default: return XCTFail("got \(error)")
            }
            XCTAssertTrue(why.contains("certificate"), why)
        }
    }
}
