import Foundation
import XCTest
import TestSupport

/// Requests a worker takes together (a batch: one wake-up, one pipelined Redis round trip for
/// every `/count`, `/me` and `/auth` in it) through real nginx, one spawn-fcgi instance and a
/// real redis-server. What a batch must never do: give one client another's answer (a reply
/// read for the wrong request would hand a stranger someone's session), lose or double a
/// write, or leave a hot route waiting behind a slow one.
final class BatchEndToEndTests: XCTestCase {
    private func makeStack(_ extra: [String] = []) throws -> SessionStack {
        try SessionStack(instanceCount: 1, threads: 8,
                         extraArguments: ["--users-file", LifecycleEndToEndTests.usersFile().path] + extra)
    }

    private func login(_ stack: SessionStack, user: String) throws -> (cookie: String, handle: String) {
        let headers: [(String, String)] = [("Origin", "http://127.0.0.1:\(stack.nginxPort)"), ("Content-Type", "application/json")]
        let response = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/login", headers: headers,
                                              body: Array(#"{"user":"\#(user)","password":"\#(LifecycleEndToEndTests.password)"}"#.utf8))
        XCTAssertEqual(response.status, 200, response.text)
        let cookie = "sid=" + (try XCTUnwrap(response.setCookieValue()))
        let me = try JSONSerialization.jsonObject(with: Data(try stack.get("/me", cookie: cookie).body)) as? [String: Any]
        return (cookie, try XCTUnwrap(me?["handle"] as? String))
    }

    /// The instance's own counters, read over FastCGI with the param only nginx's internal
    /// server sets.
    private func serverCounters(_ stack: SessionStack) throws -> (requests: Int, batches: Int) {
        let port = try XCTUnwrap(stack.instancePorts.first)
        let metrics = try FastCGIClient.request(port: port, params: [
            "REQUEST_METHOD": "GET", "DOCUMENT_URI": "/metrics", "REQUEST_URI": "/metrics", "SESSION_FCGI_INTERNAL": "1",
        ])
        func value(_ name: String) throws -> Int {
            let line = try XCTUnwrap(metrics.text.split(separator: "\n").first { $0.hasPrefix(name + " ") }, "\(name) in /metrics")
            return try XCTUnwrap(Int(line.split(separator: " ")[1]))
        }
        XCTAssertGreaterThanOrEqual(try value("fastcgi_connections_open"), 1, "the scrape's own connection is open")
        return (try value("fastcgi_requests_total"), try value("fastcgi_batches_total"))
    }

    func testEveryClientGetsItsOwnAnswerWhenRequestsAreAnsweredTogether() throws {
        // One active worker: every request that arrives while it is busy joins its next batch.
        let stack = try makeStack(["--active-threads", "1"])
        defer { stack.stop() }
        let logins: [(user: String, cookie: String, handle: String)] = try ["ada", "bob", "ada", "bob", "ada", "bob"].map { user in
            let session = try login(stack, user: user)
            return (user, session.cookie, session.handle)
        }
        let anonymous = try (0..<10).map { _ in "sid=" + (try XCTUnwrap(stack.get("/count").setCookieValue())) }
        let before = try serverCounters(stack)

        let failures = Failures()
        let mistakes = LockedList()
        let rounds = 60
        DispatchQueue.concurrentPerform(iterations: logins.count + anonymous.count) { client in
            if client < logins.count {
                let (user, cookie, handle) = logins[client]
                var lastCount = -1
                for round in 0..<rounds {
                    let path = ["/me", "/auth", "/count"][round % 3]
                    guard let response = try? HTTPClient.get(port: stack.nginxPort, path: path, cookie: cookie) else {
                        failures.record()
                        continue
                    }
                    switch path {
                    case "/me":
                        let me = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
                        if response.status != 200 || me?["user"] as? String != user || me?["handle"] as? String != handle {
                            mistakes.append("\(user) \(handle) got /me \(response.status) \(response.text)")
                        }
                        if let count = me?["count"] as? Int {
                            if lastCount >= 0 && count != lastCount { mistakes.append("\(handle): /me count \(count) after \(lastCount)") }
                            lastCount = count
                        }
                    case "/auth":
                        if response.status != 204 || response.header("X-Session-User") != user {
                            mistakes.append("\(user) got /auth \(response.status) \(response.header("X-Session-User") ?? "-")")
                        }
                    default:
                        if response.status != 200 || (lastCount >= 0 && response.count != lastCount + 1) || response.setCookieValue() != nil {
                            mistakes.append("\(handle): /count \(response.status) \(response.text) after \(lastCount)")
                        }
                        lastCount = response.count ?? -1
                    }
                }
            } else {
                let cookie = anonymous[client - logins.count]
                for round in 0..<rounds {
                    guard let response = try? HTTPClient.get(port: stack.nginxPort, path: "/count", cookie: cookie) else {
                        failures.record()
                        continue
                    }
                    // Each anonymous session counts only its own visits: 1 at its start, then
                    // one per request of this client, in order.
                    if response.status != 200 || response.count != round + 2 || response.setCookieValue() != nil {
                        mistakes.append("anonymous \(client): /count \(response.status) \(response.text), expected \(round + 2)")
                    }
                }
            }
        }
        XCTAssertEqual(failures.count, 0)
        XCTAssertEqual(mistakes.items, [], "every answer belongs to the client that asked")
        for cookie in anonymous {
            XCTAssertEqual(try stack.get("/count", cookie: cookie).count, rounds + 2, "no visit lost or counted twice")
        }
        let after = try serverCounters(stack)
        let requests = after.requests - before.requests, batches = after.batches - before.batches
        XCTAssertGreaterThanOrEqual(requests, (logins.count + anonymous.count) * rounds)
        XCTAssertLessThan(batches, requests, "some requests were taken together (else this test shows nothing about batches)")
        print("batches: \(requests) requests in \(batches) batches")
    }

    /// A slow route (a login's password hash) never holds the hot routes back: the worker
    /// serving it hands its place among the active workers to a standby one. With a single
    /// active worker and logins arriving all the time, a `/count` would otherwise wait behind
    /// a hash most of the time.
    func testHotRoutesAreNotHeldBackBySlowOnes() throws {
        let stack = try makeStack(["--threads", "4", "--active-threads", "1"])
        defer { stack.stop() }
        let port = try XCTUnwrap(stack.instancePorts.first)
        let cookie = "sid=" + (try XCTUnwrap(stack.get("/count").setCookieValue()))
        let stop = Flag()
        let loginTimes = LockedList()
        // Straight to the instance (nginx's login rate limit would refuse most of them). A
        // wrong password costs the whole hash.
        for _ in 0..<2 {
            Thread {
                while !stop.isSet {
                    let started = Date()
                    let response = try? FastCGIClient.request(port: port, params: [
                        "REQUEST_METHOD": "POST", "DOCUMENT_URI": "/login", "REQUEST_URI": "/login", "CONTENT_TYPE": "application/json",
                    ], body: Array(#"{"user":"ada","password":"wrong"}"#.utf8))
                    if response?.status == 401 { loginTimes.append(String(Date().timeIntervalSince(started))) }
                }
            }.start()
        }
        defer { stop.set() }
        let deadline = Date().addingTimeInterval(60)
        while loginTimes.items.count < 2 {
            guard Date() < deadline else { return XCTFail("no wrong-password login was answered 401 within 60 s") }
            usleep(10_000)
        }
        var countTimes: [Double] = []
        var count = 1
        for _ in 0..<150 {
            let started = Date()
            let response = try stack.get("/count", cookie: cookie)
            countTimes.append(Date().timeIntervalSince(started))
            count += 1
            XCTAssertEqual(response.count, count)
        }
        stop.set()
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let login = median(loginTimes.items.compactMap(Double.init)), hot = median(countTimes)
        print("median login \(login * 1000) ms (\(loginTimes.items.count) logins), median /count beside them \(hot * 1000) ms")
        XCTAssertLessThan(hot, login / 4, "a /count waited behind logins: median \(hot) s against \(login) s per login")
    }
}

/// Strings collected from several threads.
final class LockedList: @unchecked Sendable {
    // @unchecked: `values` is only touched under `lock`.
    private let lock = NSLock()
    private var values: [String] = []
    func append(_ value: String) { lock.withLock { values.append(value) } }
    var items: [String] { lock.withLock { values } }
}
