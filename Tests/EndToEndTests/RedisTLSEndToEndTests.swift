import Foundation
import XCTest
import TestSupport

/// TLS to Redis failing closed, through nginx and spawn-fcgi: a Redis certificate from an
/// unknown CA, or one that does not carry the expected name, gives a clear 503 and a log line
/// that says why — never a plain-text fallback and never a session; `--redis-tls-insecure`
/// connects and warns.
final class RedisTLSEndToEndTests: XCTestCase {
    nonisolated(unsafe) private static var material: TLSMaterial?

    private func tlsServer() throws -> RedisServerProcess {
        if Self.material == nil { Self.material = try TLSMaterial() }
        return try RedisServerProcess(tls: RedisServerTLS(material: try XCTUnwrap(Self.material)))
    }

    private func log(_ stack: SessionStack) -> String {
        stack.instanceAddresses.map { (try? String(contentsOf: stack.logFile(address: $0), encoding: .utf8)) ?? "" }.joined()
    }

    /// Every answer that needs Redis is a 503 with Retry-After and no cookie; the log says why.
    private func assertFailsClosed(_ stack: SessionStack, because reason: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for path in ["/count", "/healthz"] {
            let response = try stack.get(path)
            XCTAssertEqual(response.status, 503, "\(path): \(response.text)", file: file, line: line)
            XCTAssertNil(response.setCookieValue(), "no session without the store", file: file, line: line)
        }
        let count = try stack.get("/count")
        XCTAssertEqual(count.text, "{\"error\":\"session store unavailable\"}", file: file, line: line)
        XCTAssertNotNil(count.header("Retry-After"), file: file, line: line)
        XCTAssertTrue(log(stack).contains(reason), "the log names the cause (\(reason)):\n\(log(stack))", file: file, line: line)
        XCTAssertEqual(try stack.get("/livez").status, 200, "the instance itself stays up", file: file, line: line)
    }

    func testAnUnknownCertificateAuthorityFailsClosed() throws {
        let redis = try tlsServer()
        let material = try XCTUnwrap(Self.material)
        let stack = try SessionStack(instanceCount: 1, extraArguments: ["--redis-tls-ca-file", material.otherCAFile], redis: redis)
        defer { stack.stop() }
        try assertFailsClosed(stack, because: "certificate verify failed")
    }

    func testACertificateForAnotherNameFailsClosed() throws {
        let redis = try tlsServer()
        let material = try XCTUnwrap(Self.material)
        let stack = try SessionStack(instanceCount: 1, extraArguments: ["--redis-tls-ca-file", material.caFile,
                                                                        "--redis-tls-server-name", "redis.example.org"], redis: redis)
        defer { stack.stop() }
        try assertFailsClosed(stack, because: "hostname mismatch")
    }

    func testPlainTextIsNeverTriedAgainstATLSServer() throws {
        let redis = try tlsServer()
        let stack = try SessionStack(instanceCount: 1, redis: redis, redisURL: "redis://127.0.0.1:\(redis.port)")
        defer { stack.stop() }
        let response = try stack.get("/count")
        XCTAssertEqual(response.status, 503)
        XCTAssertNil(response.setCookieValue())
    }

    func testTLSAgainstAPlainServerFailsClosed() throws {
        let plain = try RedisServerProcess()
        let material = try Self.material ?? TLSMaterial()
        Self.material = material
        let stack = try SessionStack(instanceCount: 1, extraArguments: ["--redis-tls-ca-file", material.caFile],
                                     redis: plain, redisURL: "rediss://127.0.0.1:\(plain.port)")
        defer { stack.stop() }
        try assertFailsClosed(stack, because: "TLS handshake failed")
    }

    func testInsecureModeConnectsAndWarns() throws {
        let redis = try tlsServer()
        let material = try XCTUnwrap(Self.material)
        let stack = try SessionStack(instanceCount: 1, extraArguments: ["--redis-tls-ca-file", material.otherCAFile,
                                                                        "--redis-tls-insecure", "yes"], redis: redis)
        defer { stack.stop() }
        XCTAssertEqual(try stack.get("/count").status, 200)
        XCTAssertTrue(log(stack).contains("--redis-tls-insecure: Redis certificates and names are NOT verified"), log(stack))
    }
}
