import Foundation
import XCTest
import RedisClient
import TestSupport

/// `RedisConnection` and `RedisClient` over TLS to real TLS-only redis-servers (`--port 0`),
/// with certificates made by `TLSMaterial` for this class.
final class RedisTLSTests: XCTestCase {
    nonisolated(unsafe) private static var sharedMaterial: TLSMaterial?
    nonisolated(unsafe) private static var sharedServer: RedisServerProcess?
    nonisolated(unsafe) private static var sharedMutual: RedisServerProcess?
    nonisolated(unsafe) private static var startError: Error?

    override class func setUp() {
        do {
            let material = try TLSMaterial()
            sharedMaterial = material
            sharedServer = try RedisServerProcess(tls: RedisServerTLS(material: material, clientCertificates: .optional))
            sharedMutual = try RedisServerProcess(tls: RedisServerTLS(material: material, clientCertificates: .yes))
        } catch {
            startError = error
        }
    }

    override class func tearDown() {
        sharedServer?.stop()
        sharedMutual?.stop()
        sharedServer = nil
        sharedMutual = nil
        sharedMaterial = nil
    }

    private func shared<T>(_ value: T?) throws -> T {
        if let error = Self.startError { throw error }
        return try XCTUnwrap(value)
    }

    private var material: TLSMaterial { get throws { try shared(Self.sharedMaterial) } }
    /// TLS only; a client certificate is optional.
    private var server: RedisServerProcess { get throws { try shared(Self.sharedServer) } }
    /// TLS only; a client certificate is required (mutual TLS).
    private var mutual: RedisServerProcess { get throws { try shared(Self.sharedMutual) } }

    private func connection(_ server: RedisServerProcess, host: String = "127.0.0.1", _ tls: RedisTLSConfiguration) -> RedisConnection {
        RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: host, port: server.port), tls: tls))
    }

    private func assertConnectFails(_ connection: RedisConnection, mentioning words: [String], file: StaticString = #filePath,
                                    line: UInt = #line) {
        XCTAssertThrowsError(try connection.send(RedisCommand("PING")), file: file, line: line) { error in
            // A refusal for good (exit 1 of check-config), not "unreachable now" (new-user review s19).
            guard case .tlsRefused(let why) = error as? RedisError else { return XCTFail("got \(error)", file: file, line: line) }
            XCTAssertTrue(words.contains { why.lowercased().contains($0) }, "the reason names the problem: \(why)", file: file, line: line)
        }
        XCTAssertFalse(connection.isConnected, file: file, line: line)
    }

    func testTLSOnlyServerAnswersOverTLSAndNotInPlainText() throws {
        let server = try server
        let configuration = try RedisConfiguration(url: "rediss://127.0.0.1:\(server.port)")
        XCTAssertEqual(configuration.tls, RedisTLSConfiguration())
        var verified = configuration
        verified.tls?.caFile = try material.caFile
        let client = RedisClient(configuration: verified)
        XCTAssertEqual(try client.send(RedisCommand("SET", "tls:k", "v"), key: "tls:k"), .status("OK"))
        XCTAssertEqual(try client.send(RedisCommand("GET", "tls:k"), key: "tls:k").text, "v")
        // The name in the URL may be the DNS name the certificate carries, too.
        XCTAssertEqual(try connection(server, host: "localhost", try material.clientConfiguration()).send(RedisCommand("PING")), .status("PONG"))

        let plain = RedisConnection(endpoint: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: server.port), commandTimeoutMilliseconds: 300))
        XCTAssertThrowsError(try plain.send(RedisCommand("PING")), "a TLS-only port does not speak plain RESP") { error in
            XCTAssertTrue("\(error)".contains("rediss://"), "the reason suggests TLS: \(error)")
        }
    }

    func testMutualTLSNeedsTheClientCertificate() throws {
        let mutual = try mutual
        let material = try material
        let client = RedisClient(configuration: mutual.configuration)
        XCTAssertEqual(try client.send(RedisCommand("PING"), key: nil), .status("PONG"))
        XCTAssertEqual(mutual.configuration.tls?.certificateFile, material.clientCertificateFile)

        // TLS 1.3 refuses a missing client certificate only after the handshake: a refusal when
        // the server's alert is read first, a lost connection naming the client certificate
        // when its reset wins the race (a proxy whose backend is down looks the same, so that
        // stays an outage, not a configuration error).
        let anonymous = connection(mutual, material.clientConfiguration(clientCertificate: false))
        XCTAssertThrowsError(try anonymous.send(RedisCommand("PING"))) { error in
            switch error as? RedisError {
            case .tlsRefused(let why)?, .connectFailed(let why)?: XCTAssertTrue(why.contains("certificate"), why)
            default: XCTFail("got \(error)")
            }
        }
        XCTAssertFalse(anonymous.isConnected)
    }

    func testAnUnknownCAFailsClosed() throws {
        let server = try server
        assertConnectFails(connection(server, try material.clientConfiguration(trustOtherCA: true)), mentioning: ["certificate"])
        // The system store does not know the test CA either.
        assertConnectFails(connection(server, RedisTLSConfiguration()), mentioning: ["certificate"])
    }

    func testAWrongServerNameFailsClosed() throws {
        let server = try server
        let material = try material
        assertConnectFails(connection(server, material.clientConfiguration(serverName: "redis.example.com")), mentioning: ["name", "hostname"])
        XCTAssertEqual(try connection(server, material.clientConfiguration(serverName: "localhost")).send(RedisCommand("PING")), .status("PONG"))
    }

    func testInsecureModeConnectsWithoutVerifying() throws {
        let server = try server
        let material = try material
        let insecure = connection(server, material.clientConfiguration(trustOtherCA: true, serverName: "redis.example.com", insecure: true))
        XCTAssertEqual(try insecure.send(RedisCommand("PING")), .status("PONG"))
    }

    /// TLS 1.3 servers send session tickets after the handshake, records that are no reply: an
    /// idle connection holding them must still count as healthy, or every command after a pause
    /// reconnects (a full TLS handshake each time).
    func testIdleTLSConnectionsAreReusedDespiteSessionTickets() throws {
        for server in [try server, try mutual] {
            let connection = server.connection()
            XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
            for _ in 0..<3 {
                Thread.sleep(forTimeInterval: 0.15)  // past the 100 ms after which the idle check runs
                XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
            }
            XCTAssertEqual(connection.connectionsOpened, 1, "port \(server.port): an idle TLS connection was replaced")
        }
    }

    func testAnIdleTLSConnectionTheServerClosedIsReplacedBeforeUse() throws {
        let server = try server
        let connection = server.connection()
        XCTAssertEqual(try connection.send(RedisCommand("CLIENT", "SETNAME", "victim")), .status("OK"))
        XCTAssertEqual(try server.connection().send(RedisCommand("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")).integer, 1)
        Thread.sleep(forTimeInterval: 0.15)
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"), "no error reaches the caller")
        XCTAssertEqual(connection.connectionsOpened, 2)
    }
}
