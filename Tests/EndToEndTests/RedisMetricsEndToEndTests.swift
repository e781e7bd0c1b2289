import Foundation
import XCTest
import RedisClient
import TestSupport

/// The Redis client metrics of `GET /metrics` move on real events: one round trip per `/count`
/// (as Redis itself counts them), a killed redis-server seen as errors while it is away, then
/// as reconnects once it is back. Each test has a stack of its own, with one instance so that
/// its metrics see every request.
final class RedisMetricsEndToEndTests: XCTestCase {
    /// The instance's metrics, asked straight over FastCGI as nginx's internal server does,
    /// by series (`name{labels}`).
    private func metrics(_ stack: SessionStack) throws -> [String: Int] {
        let port = try XCTUnwrap(stack.instancePorts.first)
        let response = try FastCGIClient.request(port: port, params: [
            "REQUEST_METHOD": "GET", "DOCUMENT_URI": "/metrics", "REQUEST_URI": "/metrics", "SESSION_FCGI_INTERNAL": "1",
        ])
        XCTAssertEqual(response.status, 200)
        var series: [String: Int] = [:]
        for line in response.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Int(line[line.index(after: space)...]) else { continue }
            series[String(line[..<space])] = value
        }
        return series
    }

    private func errors(_ metrics: [String: Int]) -> Int {
        ["connect", "timeout", "connection_lost", "server"].reduce(0) { $0 + (metrics["redis_client_errors_total{kind=\"\($1)\"}"] ?? 0) }
    }

    func testEveryCountIsOneRoundTripAsRedisCountsIt() throws {
        let stack = try SessionStack(instanceCount: 1, threads: 2)
        defer { stack.stop() }
        let id = try XCTUnwrap(stack.get("/count").setCookieValue())
        // Both workers' connections open, scripts loaded.
        for _ in 0..<4 { _ = try stack.get("/count", cookie: "sid=\(id)") }
        try stack.redis.resetStatistics()
        let before = try metrics(stack)
        for _ in 0..<20 { XCTAssertEqual(try stack.get("/count", cookie: "sid=\(id)").status, 200) }
        let after = try metrics(stack)
        let counted = try XCTUnwrap(after["redis_client_round_trips_total"]) - (before["redis_client_round_trips_total"] ?? 0)
        XCTAssertEqual(counted, 20)
        XCTAssertEqual(try stack.redis.commandCalls()["evalsha"], counted, "the client counts what Redis saw")
        XCTAssertEqual(errors(after), 0)
        XCTAssertEqual(after["redis_client_reconnects_total"], 0)
        XCTAssertEqual(after["session_http_requests_total{route=\"/count\",status=\"200\"}"], 25)
    }

    func testAKilledRedisIsCountedAsErrorsThenAsReconnects() throws {
        let stack = try SessionStack(instanceCount: 1, threads: 2)
        defer { stack.stop() }
        let id = try XCTUnwrap(stack.get("/count").setCookieValue())
        for _ in 0..<4 { XCTAssertEqual(try stack.get("/count", cookie: "sid=\(id)").status, 200) }
        XCTAssertEqual(errors(try metrics(stack)), 0)

        stack.redis.stop(abruptly: true)
        for _ in 0..<6 { XCTAssertEqual(try stack.get("/count", cookie: "sid=\(id)").status, 503) }
        let away = try metrics(stack)
        XCTAssertGreaterThanOrEqual(errors(away), 6, "each failed request is a failure of the client: \(away)")
        XCTAssertEqual(away["session_store_errors_total{kind=\"unavailable\"}"], 6)

        try stack.redis.start()
        // A worker reconnects at its next request once its connect back-off (at most 1 s) is over.
        try waitUntil("a worker reconnected", timeout: 10) { () throws -> Bool in
            guard try stack.get("/count", cookie: "sid=\(id)").status == 200 else { return false }
            return try metrics(stack)["redis_client_reconnects_total"] ?? 0 >= 1
        }
        let back = try metrics(stack)
        XCTAssertGreaterThan(back["redis_client_round_trips_total"] ?? 0, away["redis_client_round_trips_total"] ?? 0)
        XCTAssertEqual(back["redis_client_errors_total{kind=\"server\"}"], 0, "an outage is not a server error")
    }
}
