import Foundation
import XCTest
import RedisClient
import TestSupport

/// The service through real nginx and spawn-fcgi on a real Redis Sentinel setup and a real
/// Redis Cluster: security writes confirmed by a replica or said not to be, and a failover under
/// traffic that costs only 503s inside its window, keeps every count that a replica confirmed,
/// and brings back no session that was logged out.
final class TopologyEndToEndTests: XCTestCase {
    private struct Login {
        let cookie: String
        let csrf: String
    }

    private func login(_ stack: SessionStack) throws -> Login {
        let body = "{\"user\":\"ada\",\"password\":\"\(LifecycleEndToEndTests.password)\"}"
        let response = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/login",
                                              headers: [("Content-Type", "application/json"), ("Origin", "http://127.0.0.1:\(stack.nginxPort)")],
                                              body: Array(body.utf8))
        XCTAssertEqual(response.status, 200, response.text)
        XCTAssertNil(response.header("Session-Replication"), "a login with a healthy replica is confirmed")
        let id = try XCTUnwrap(response.setCookieValue())
        let fields = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        return Login(cookie: "sid=\(id)", csrf: try XCTUnwrap(fields["csrfToken"] as? String))
    }

    private func logout(_ stack: SessionStack, _ session: Login) throws -> HTTPResponse {
        try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/logout",
                               headers: [("Content-Type", "application/json"), ("Origin", "http://127.0.0.1:\(stack.nginxPort)"),
                                         ("Cookie", session.cookie), ("X-CSRF-Token", session.csrf)],
                               body: Array("{}".utf8))
    }

    private func count(_ response: HTTPResponse) -> Int? {
        (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["count"] as? Int
    }

    /// Sends `/count` with `cookie` every 50 ms until `successes` answers were 200, and checks
    /// each: a 200 counts exactly one more than the last, anything else is a 503. Returns the
    /// seconds spent without a 200.
    private func countThroughFailover(_ stack: SessionStack, cookie: String, from start: Int, successes: Int,
                                      timeout: TimeInterval = 30) throws -> TimeInterval {
        var expected = start, answered = 0, statuses: [Int: Int] = [:]
        let began = Date()
        var lastSuccess = began, longestGap: TimeInterval = 0
        while answered < successes {
            XCTAssertLessThan(Date().timeIntervalSince(began), timeout, "no recovery: \(statuses)")
            if Date().timeIntervalSince(began) > timeout { break }
            let response = try stack.get("/count", cookie: cookie)
            statuses[response.status, default: 0] += 1
            if response.status == 200 {
                expected += 1
                answered += 1
                XCTAssertEqual(count(response), expected, "a count was lost or doubled across the failover (\(statuses))")
                XCTAssertNil(response.setCookieValue(), "the session was replaced: its data did not survive the failover")
                longestGap = max(longestGap, Date().timeIntervalSince(lastSuccess))
                lastSuccess = Date()
            } else {
                XCTAssertEqual(response.status, 503, "during a failover the answer is 503, not \(response.status): \(response.text)")
                usleep(50_000)
            }
        }
        return longestGap
    }

    func testSentinelReportsAnUnconfirmedReplicaAndAFailoverKeepsCountsAndLogouts() throws {
        let sentinel = try RedisSentinelSetup()
        defer { sentinel.stop() }
        let stack = try SessionStack(instanceCount: 2, threads: 8,
                                     extraArguments: ["--users-file", LifecycleEndToEndTests.usersFile().path,
                                                      "--redis-wait-timeout-ms", "200"],
                                     redisURL: sentinel.url)
        defer { stack.stop() }

        // With the replica up, logout is confirmed: no Session-Replication header.
        let confirmed = try login(stack)
        let answer = try logout(stack, confirmed)
        XCTAssertEqual(answer.status, 200, answer.text)
        XCTAssertNil(answer.header("Session-Replication"))

        // With the replica frozen, logout still ends the session at once, within the wait's
        // bound, and says the replica did not confirm it (answer and log).
        let replica = try XCTUnwrap(sentinel.serverPorts.first { $0 != (try? sentinel.currentMaster()) })
        let unconfirmed = try login(stack)
        sentinel.pause(replica)
        let started = Date()
        let frozenAnswer = try logout(stack, unconfirmed)
        let elapsed = Date().timeIntervalSince(started)
        sentinel.resume(replica)
        XCTAssertEqual(frozenAnswer.status, 200, frozenAnswer.text)
        XCTAssertEqual(frozenAnswer.header("Session-Replication"), "unconfirmed")
        XCTAssertLessThan(elapsed, 1.5, "the wait for a frozen replica is bounded by --redis-wait-timeout-ms")
        XCTAssertEqual(try stack.get("/me", cookie: unconfirmed.cookie).status, 401)
        let logs = stack.instanceAddresses.map { (try? String(contentsOf: stack.logFile(address: $0), encoding: .utf8)) ?? "" }.joined()
        XCTAssertTrue(logs.contains("event=replication_unconfirmed"), "the log says which write a replica did not confirm")

        // Traffic, then a logout the replica confirms (WAIT covers every write before it).
        let visitor = try XCTUnwrap(stack.get("/count").setCookieValue())
        for expected in 2...5 { XCTAssertEqual(count(try stack.get("/count", cookie: "sid=\(visitor)")), expected) }
        let loggedIn = try login(stack)
        let loggedOut = try login(stack)
        XCTAssertNil(try logout(stack, loggedOut).header("Session-Replication"))

        // The master dies; Sentinel promotes the replica; the instances follow without a restart.
        let oldMaster = try sentinel.killMaster()
        let gap = try countThroughFailover(stack, cookie: "sid=\(visitor)", from: 5, successes: 10)
        XCTAssertLessThan(gap, 15, "requests failed for \(gap) s")
        // Every Sentinel names the new master (they learn it from each other within a second or two).
        XCTAssertNotEqual(try sentinel.waitForPromotion(from: oldMaster), oldMaster)
        XCTAssertEqual(try stack.get("/me", cookie: loggedOut.cookie).status, 401, "a confirmed logout came back after the failover")
        XCTAssertEqual(try stack.get("/me", cookie: confirmed.cookie).status, 401)
        XCTAssertEqual(try stack.get("/me", cookie: loggedIn.cookie).status, 200, "a live login was lost in the failover")
    }

    func testClusterFailoverUnderTrafficKeepsCountsAndLogouts() throws {
        let cluster = try RedisClusterProcess()
        defer { cluster.stop() }
        let stack = try SessionStack(instanceCount: 2, threads: 8,
                                     extraArguments: ["--users-file", LifecycleEndToEndTests.usersFile().path],
                                     redisURL: cluster.url)
        defer { stack.stop() }

        let visitor = try XCTUnwrap(stack.get("/count").setCookieValue())
        for expected in 2...5 { XCTAssertEqual(count(try stack.get("/count", cookie: "sid=\(visitor)")), expected) }
        let loggedIn = try login(stack)
        let loggedOut = try login(stack)
        let answer = try logout(stack, loggedOut)
        XCTAssertEqual(answer.status, 200)
        XCTAssertNil(answer.header("Session-Replication"), "logout on a cluster with replicas is confirmed")
        // Every replica has acknowledged everything written so far.
        try cluster.waitUntilHealthy()

        let master = try cluster.master(ofKey: "sid_" + visitor)
        let slot = HashSlot.of("sid_" + visitor)
        cluster.kill(master)
        let gap = try countThroughFailover(stack, cookie: "sid=\(visitor)", from: 5, successes: 10)
        XCTAssertLessThan(gap, 15, "requests for the failed master's slots failed for \(gap) s")
        XCTAssertNotEqual(try cluster.master(ofSlot: slot), master)
        XCTAssertEqual(try stack.get("/me", cookie: loggedOut.cookie).status, 401, "a confirmed logout came back after the failover")
        XCTAssertEqual(try stack.get("/me", cookie: loggedIn.cookie).status, 200, "a live login was lost in the failover")
        XCTAssertEqual(try stack.get("/healthz").status, 200, "the health check recovers after the failover")
    }
}
