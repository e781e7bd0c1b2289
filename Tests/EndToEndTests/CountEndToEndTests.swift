import Foundation
import XCTest
import RedisClient
import TestSupport

/// `GET /count` through real nginx, two spawn-fcgi instances and a real redis-server, all on
/// free loopback ports, shared by the tests of this class (none of them breaks the stack).
final class CountEndToEndTests: XCTestCase {
    nonisolated(unsafe) private static var sharedStack: SessionStack?
    nonisolated(unsafe) private static var startError: Error?

    override class func setUp() {
        do { sharedStack = try SessionStack(instanceCount: 2, threads: 16) } catch { startError = error }
    }

    override class func tearDown() {
        sharedStack?.stop()
        sharedStack = nil
    }

    private var stack: SessionStack {
        get throws {
            if let error = Self.startError { throw error }
            return try XCTUnwrap(Self.sharedStack)
        }
    }

    private func sessionKeyExists(_ id: String) throws -> Bool {
        try stack.redisSend(RedisCommand("EXISTS", "sid_" + id), key: "sid_" + id).integer == 1
    }

    func testFirstVisitStartsASessionWithTheSafeCookie() throws {
        let response = try stack.get("/count")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("Content-Type"), "application/json")
        XCTAssertEqual(response.text, "{\"count\":1}")
        let id = try XCTUnwrap(response.setCookieValue())
        XCTAssertEqual(response.headers("Set-Cookie"), ["sid=\(id); Path=/; Max-Age=43200; HttpOnly; SameSite=Lax"])
        XCTAssertEqual(id.count, 32)
        let ttl = try XCTUnwrap(stack.redisSend(RedisCommand("TTL", "sid_" + id), key: "sid_" + id).integer)
        XCTAssertTrue((1790...1800).contains(ttl), "TTL \(ttl)")
        XCTAssertEqual(try stack.redisSend(RedisCommand("HGET", "sid_" + id, "count"), key: "sid_" + id).text, "1")
    }

    func testCountGoesOnWithTheCookie() throws {
        let id = try XCTUnwrap(stack.get("/count").setCookieValue())
        for expected in 2...12 {
            let response = try stack.get("/count", cookie: "sid=\(id)")
            XCTAssertEqual(response.count, expected)
            XCTAssertNil(response.setCookieValue(), "the browser holds the cookie already: it is not re-sent")
        }
    }

    func testCountGoesOnAcrossInstancesCalledDirectlyOverFastCGI() throws {
        let id = try XCTUnwrap(stack.get("/count").setCookieValue())
        var expected = 1
        for round in 0..<3 {
            for port in try stack.instancePorts {
                expected += 1
                let response = try FastCGIClient.get(port: port, path: "/count", cookie: "sid=\(id)")
                XCTAssertEqual(response.status, 200, "round \(round) instance \(port)")
                XCTAssertEqual(response.count, expected, "instance \(port) must see the shared session")
            }
        }
        XCTAssertEqual(try stack.get("/count", cookie: "sid=\(id)").count, expected + 1)
    }

    func testConcurrentRequestsOnOneSessionAddExactlyTheirNumber() throws {
        let stack = try self.stack
        let id = try XCTUnwrap(stack.get("/count").setCookieValue())
        let clients = 16, perClient = 25
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: clients) { _ in
            for _ in 0..<perClient {
                let response = try? HTTPClient.get(port: stack.nginxPort, path: "/count", cookie: "sid=\(id)")
                if response?.status != 200 || response?.setCookieValue() != nil { failures.record() }
            }
        }
        XCTAssertEqual(failures.count, 0)
        XCTAssertEqual(try stack.get("/count", cookie: "sid=\(id)").count, 1 + clients * perClient + 1)
    }

    func testUnknownWellFormedIDIsNeverAdopted() throws {
        let forged = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        let response = try stack.get("/count", cookie: "sid=\(forged)")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.count, 1)
        let issued = try XCTUnwrap(response.setCookieValue())
        XCTAssertNotEqual(issued, forged)
        XCTAssertFalse(try sessionKeyExists(forged), "a client-chosen id became a Redis key")
        XCTAssertTrue(try sessionKeyExists(issued))
    }

    func testHostileCookiesGetAFreshSessionNeverAnError() throws {
        let stack = try self.stack
        let hostile = [
            "sid=", "sid", "sid=short", "sid=\(String(repeating: "A", count: 33))",
            "sid=\(String(repeating: "A", count: 31))=", "sid=../../../../etc/passwd",
            "sid=AAAAAAAAAAAAAAAA%00AAAAAAAAAAAAAA", "sid=\"\"", "sid=\(String(repeating: "é", count: 16))",
            "sid=*; sid=?; sid=AAAA", ";;;;====;;;;", "sid=\(String(repeating: "x", count: 4000))",
            String(repeating: "a=b; ", count: 500), "sid={\"$ne\":null}", "sid='; DROP TABLE sessions; --",
        ]
        for cookie in hostile {
            let response = try stack.get("/count", cookie: cookie)
            XCTAssertEqual(response.status, 200, "cookie \(cookie.prefix(40))")
            XCTAssertEqual(response.count, 1, "cookie \(cookie.prefix(40))")
            let issued = try XCTUnwrap(response.setCookieValue())
            XCTAssertEqual(issued.count, 32)
            XCTAssertFalse(cookie.contains(issued))
        }
        // Headers past nginx's limit are refused by nginx (4xx), never passed on.
        let huge = try stack.get("/count", cookie: "sid=" + String(repeating: "A", count: 20_000))
        XCTAssertTrue((400..<500).contains(huge.status), "status \(huge.status)")
        XCTAssertEqual(try stack.get("/healthz").status, 200, "the instances must still be up")
    }

    func testMalformedIDAmongValidOnesUsesTheValidOne() throws {
        let id = try XCTUnwrap(stack.get("/count").setCookieValue())
        let response = try stack.get("/count", cookie: "sid=garbage; other=1; sid=\(id)")
        XCTAssertEqual(response.count, 2)
        XCTAssertNil(response.setCookieValue())
    }

    func testCookieIsSecureWhenTheRequestCameOverHTTPS() throws {
        let port = try XCTUnwrap(stack.instancePorts.first)
        var params = ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/count", "HTTPS": "on"]
        let secure = try FastCGIClient.request(port: port, params: params)
        XCTAssertEqual(secure.status, 200)
        XCTAssertTrue(try XCTUnwrap(secure.header("Set-Cookie")).hasSuffix("; Max-Age=43200; Secure; HttpOnly; SameSite=Lax"))
        params["HTTPS"] = nil
        let plain = try FastCGIClient.request(port: port, params: params)
        XCTAssertFalse(try XCTUnwrap(plain.header("Set-Cookie")).contains("Secure"))
    }

    func testOneRedisRoundTripPerRequestOnBothPaths() throws {
        let stack = try self.stack
        // Warm every path once so that script loading is not counted.
        let id = try XCTUnwrap(stack.get("/count").setCookieValue())
        _ = try stack.get("/count", cookie: "sid=\(id)")
        try stack.resetRedisStatistics()
        let newSessions = 20, existing = 30
        for _ in 0..<newSessions { XCTAssertEqual(try stack.get("/count").status, 200) }
        for _ in 0..<existing { XCTAssertEqual(try stack.get("/count", cookie: "sid=\(id)").status, 200) }
        let calls = try stack.redisCommandCalls()
        XCTAssertEqual(calls["evalsha"], newSessions + existing, "one EVALSHA per request: \(calls)")
        // Everything else ran inside the scripts (their calls are counted by Redis too), or is
        // a connection's one-time greeting (the test's own inspection logging in or, over TLS,
        // its first round trip), never a per-request command: `ping` and `auth` are at most one
        // per new connection.
        // On a cluster a new client also loads the slot map (`cluster|slots`), with Sentinel a new
        // connection checks `role`: once per worker, far fewer than the requests.
        let greetingNames: Set<String> = ["ping", "auth", "cluster|slots", "role"]
        let greetings = greetingNames.reduce(0) { $0 + (calls[$1] ?? 0) }
        XCTAssertLessThan(greetings, newSessions + existing, "connection greetings on every request: \(calls)")
        let others = Set(calls.keys).subtracting(["evalsha", "exists", "hincrby", "hset", "hmget", "hget", "time", "expire",
                                                  "config|resetstat", "info",
                                                  "replconf"]).subtracting(greetingNames)  // replconf: a replica's acknowledgements
        XCTAssertEqual(others, [], "commands other than the session scripts: \(calls)")
        XCTAssertEqual(calls["hincrby"], existing)
        XCTAssertEqual(calls["time"], newSessions + existing)
    }

    func testWrongMethodUnknownPathAndHealth() throws {
        let post = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/count", body: Array("{}".utf8))
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.header("Allow"), "GET, HEAD")
        XCTAssertEqual(post.header("Content-Type"), "application/json")
        XCTAssertEqual(post.text, "{\"error\":\"method not allowed\"}")
        let delete = try HTTPClient.request(port: stack.nginxPort, method: "DELETE", path: "/count")
        XCTAssertEqual(delete.status, 405)
        let missing = try stack.get("/nothing-here")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.text, "{\"error\":\"not found\"}")
        let health = try stack.get("/healthz")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.text, "{\"status\":\"ok\"}")
        XCTAssertTrue(health.headers("Set-Cookie").isEmpty, "health checks must not create sessions")
    }

    func testOversizedAndMalformedBodiesGetAClear4xx() throws {
        // Through nginx: refused at the edge.
        let big = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/count",
                                         body: [UInt8](repeating: 65, count: 100_000))
        XCTAssertEqual(big.status, 413)
        XCTAssertEqual(big.header("Content-Type"), "application/json", "nginx's own refusal in the API's format")
        XCTAssertEqual(big.text, "{\"error\":\"request body too large\"}")
        let hugeHeader = try HTTPClient.request(port: stack.nginxPort, method: "GET", path: "/count",
                                                headers: [("Cookie", "x=" + String(repeating: "a", count: 9000))])
        XCTAssertEqual(hugeHeader.status, 400)
        XCTAssertEqual(hugeHeader.header("Content-Type"), "application/json")
        // Straight to an instance: the instance's own limit and parser.
        let port = try XCTUnwrap(stack.instancePorts.first)
        let direct = try FastCGIClient.request(port: port, params: ["REQUEST_METHOD": "POST", "DOCUMENT_URI": "/count"],
                                               body: [UInt8](repeating: 65, count: 70_000))
        XCTAssertEqual(direct.status, 413)
        XCTAssertEqual(direct.header("Content-Type"), "application/json")
        let malformed = try FastCGIClient.request(port: port, params: ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/count",
                                                                       "CONTENT_LENGTH": "12abc"])
        XCTAssertEqual(malformed.status, 400)
        XCTAssertTrue(malformed.text.contains("Content-Length"))
        let negative = try FastCGIClient.request(port: port, params: ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/count",
                                                                      "CONTENT_LENGTH": "-1"])
        XCTAssertEqual(negative.status, 400)
        let hugeCookie = try FastCGIClient.get(port: port, path: "/count", cookie: String(repeating: "c=1;", count: 3000))
        XCTAssertEqual(hugeCookie.status, 431)
        // The instance is still serving.
        XCTAssertEqual(try FastCGIClient.get(port: port, path: "/healthz").status, 200)
    }

    func testMalformedRequestLineIsRefusedByNginx() throws {
        let response = try HTTPClient.raw(port: stack.nginxPort, bytes: Array("GET /count HTTP/9.9\r\n\r\n".utf8))
        XCTAssertTrue((400..<600).contains(response.status))
        XCTAssertEqual(try stack.get("/healthz").status, 200)
        // Request lines nginx cannot parse get its JSON 400, not a 500 (attack review s19: the
        // 400 went to a named location, which a request without a URI cannot be redirected to).
        for line in ["GeT /count HTTP/1.1", "GET /count%00 HTTP/1.1", "GET /%2e%2e/count HTTP/1.1", "GET * HTTP/1.1"] {
            let refused = try HTTPClient.raw(port: stack.nginxPort, bytes: Array("\(line)\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
            XCTAssertEqual(refused.status, 400, line)
            XCTAssertEqual(refused.header("Content-Type"), "application/json", line)
            XCTAssertEqual(refused.text, #"{"error":"bad request: malformed, or headers too large"}"#, line)
        }
        // A Transfer-Encoding nginx does not know: its 501, in JSON too (attack review s21).
        for coding in ["xchunked", "chunked, identity"] {
            let refused = try HTTPClient.raw(port: stack.nginxPort, bytes: Array(
                "POST /count HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: \(coding)\r\nConnection: close\r\n\r\n".utf8))
            XCTAssertEqual(refused.status, 501, coding)
            XCTAssertEqual(refused.header("Content-Type"), "application/json", coding)
            XCTAssertEqual(refused.header("Cache-Control"), "no-store", coding)
        }
    }
}

/// A thread-safe failure counter.
final class Failures: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value = 0
    func record() { lock.withLock { value += 1 } }
    var count: Int { lock.withLock { value } }
}
