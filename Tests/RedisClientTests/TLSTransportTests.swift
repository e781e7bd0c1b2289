import Foundation
import XCTest
@testable import RedisClient
import TestSupport

/// `TLSTransport`'s idle check against a real TLS-only redis-server, on a transport fresh from
/// its handshake: TLS 1.3 session tickets are waiting there, records that carry no reply.
final class TLSTransportTests: XCTestCase {
    func testSessionTicketsAreNotMistakenForDataOrAHangUp() throws {
        let material = try TLSMaterial()
        let server = try RedisServerProcess(tls: RedisServerTLS(material: material))
        defer { server.stop() }
        let context = try TLSContext(material.clientConfiguration())
        let socket = try SocketTransport.connect(.tcp(host: "127.0.0.1", port: server.port), connectTimeoutMilliseconds: 1000,
                                                 ioTimeoutMilliseconds: 1000)
        let transport = try TLSTransport(socket: socket, context: context, host: "127.0.0.1")
        defer { transport.close() }
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertFalse(socket.isIdleAndHealthy(), "the tickets wait unread on the socket")
        XCTAssertTrue(transport.isIdleAndHealthy(), "tickets are no data and no hang-up")
        XCTAssertTrue(transport.isIdleAndHealthy())
        XCTAssertTrue(socket.isIdleAndHealthy(), "the check consumed the tickets")

        let ping: [UInt8] = Array("*1\r\n$4\r\nPING\r\n".utf8)
        try ping.withUnsafeBytes { try transport.writeAll($0) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try buffer.withUnsafeMutableBytes { try transport.read(into: $0) }
        XCTAssertEqual(String(decoding: buffer[0..<count], as: UTF8.self), "+PONG\r\n", "the blocking reads still work after the check")

        _ = try server.connection().send(RedisCommand("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"))
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertFalse(transport.isIdleAndHealthy(), "a connection the server closed is not healthy")
    }
}
