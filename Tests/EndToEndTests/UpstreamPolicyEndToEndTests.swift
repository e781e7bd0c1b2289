import Foundation
import XCTest
import RedisClient
import TestSupport

/// nginx's failure policy for the instances (the template's upstream block and
/// fastcgi_next_upstream): a hung instance is skipped and serves again as soon as it answers;
/// slow requests never make nginx answer "no live upstreams".
final class UpstreamPolicyEndToEndTests: XCTestCase {
    /// The template's fastcgi_read_timeout, in seconds.
    static let readTimeout = 5.0

    /// Review finding: with max_fails=1 (and each nginx worker counting on its own), one request
    /// per instance that outlived the read timeout took both instances out of that worker, and
    /// everyone it served got "502 no live upstreams". Here three requests hang at the same
    /// moment, on three kept-alive connections: two land on one instance and one on the other
    /// (and, since two nginx workers share three connections, one worker has a request on each
    /// instance). Afterwards both instances must serve at once, on every connection.
    func testRequestsTimingOutOnBothInstancesAtOnceTakeNeitherOut() throws {
        let stack = try SessionStack(instanceCount: 2, threads: 8)
        defer { stack.stop() }
        let id = try XCTUnwrap(stack.get("/count").setCookieValue())
        let connections = try (0..<3).map { _ in try HTTPConnection(port: stack.nginxPort) }
        for connection in connections {
            XCTAssertEqual(try connection.request(path: "/count", headers: [("Cookie", "sid=\(id)")]).status, 200)
        }

        for address in stack.instanceAddresses { stack.pauseInstance(address: address) }
        let slow = LoadRecorder()
        let started = Date()
        DispatchQueue.concurrentPerform(iterations: connections.count) { index in
            let response = try? connections[index].request(path: "/count?slow=\(index)", headers: [("Cookie", "sid=\(id)")])
            slow.record(Sample(client: index, target: "/count?slow=\(index)", counting: true, began: 0,
                               seconds: Date().timeIntervalSince(started), status: response?.status ?? 0, count: nil))
        }
        for address in stack.instanceAddresses { stack.resumeInstance(address: address) }
        for sample in slow.samples {
            XCTAssertEqual(sample.status, 504, "a hung request should time out (after \(sample.seconds) s)")
            XCTAssertGreaterThan(sample.seconds, Self.readTimeout - 0.5, "only the read timeout notices a hung instance")
        }
        let timedOut = slow.samples.compactMap { waitForLogEntry(stack, target: $0.target)?.upstreams }
        XCTAssertTrue(timedOut.allSatisfy { $0.count == 1 }, "/count is never retried after a timeout: \(timedOut)")
        XCTAssertEqual(Set(timedOut.joined()), Set(stack.instanceAddresses), "both instances should have timed out")

        // Both instances answer again at once: none was taken out.
        for round in 0..<5 {
            for (index, connection) in connections.enumerated() {
                let kept = try connection.request(path: "/count", headers: [("Cookie", "sid=\(id)")])
                XCTAssertEqual(kept.status, 200, "round \(round), connection \(index): \(kept.text)")
            }
            let fresh = try stack.get("/healthz")
            XCTAssertEqual(fresh.status, 200, "round \(round) on a new connection: \(fresh.text)")
        }
        let errors = (try? String(contentsOf: stack.errorLog, encoding: .utf8)) ?? ""
        XCTAssertFalse(errors.contains("no live upstreams"), errors)
        XCTAssertFalse(errors.contains("temporarily disabled"), errors)
    }

    /// One instance hangs (SIGSTOP) under steady load and wakes up again (SIGCONT). Routes that
    /// may be retried after a timeout (here /healthz) and /count (never sent twice) are measured
    /// side by side; the numbers are printed for the README.
    func testHungInstanceIsSkippedAndServesAgainWhenItWakesUp() throws {
        let stack = try SessionStack(instanceCount: 2, threads: 32)
        defer { stack.stop() }
        let hung = stack.instanceAddresses[0]
        let healthy = stack.instanceAddresses[1]
        let counters = 4, checkers = 4
        let sessions = try (0..<counters).map { _ in try XCTUnwrap(stack.get("/count").setCookieValue()) }

        let load = LoadRecorder()
        let start = Date()
        let stopLoad = Flag()
        let group = DispatchGroup()
        for client in 0..<(counters + checkers) {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var n = 0
                while !stopLoad.isSet {
                    n += 1
                    let counting = client < counters
                    let target = (counting ? "/count" : "/healthz") + "?c=\(client)-\(n)"
                    let began = Date()
                    let response = try? HTTPClient.get(port: stack.nginxPort, path: target,
                                                       cookie: counting ? "sid=\(sessions[client])" : nil)
                    load.record(Sample(client: client, target: target, counting: counting,
                                       began: began.timeIntervalSince(start), seconds: Date().timeIntervalSince(began),
                                       status: response?.status ?? 0, count: response?.count))
                    usleep(20_000)
                }
            }
        }
        Thread.sleep(forTimeInterval: 1.5)
        let pausedAt = Date().timeIntervalSince(start)
        stack.pauseInstance(address: hung)
        Thread.sleep(forTimeInterval: 14)
        let resumedAt = Date().timeIntervalSince(start)
        stack.resumeInstance(address: hung)
        Thread.sleep(forTimeInterval: 5)
        stopLoad.set()
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success, "the load did not stop")
        Thread.sleep(forTimeInterval: 1)  // the woken instance finishes what it had queued

        let samples = load.samples
        let log = Dictionary(AccessLog.entries(stack.accessLog).map { ($0.target, $0) }, uniquingKeysWith: { first, _ in first })
        let report = Report(samples: samples, pausedAt: pausedAt, resumedAt: resumedAt, detection: Self.readTimeout + 1)
        print(report.text)

        // Nobody ever got "no live upstreams", and the retried route never failed.
        XCTAssertEqual(samples.filter { $0.status == 502 || $0.status == 0 }.count, 0, "502s or failed connections")
        XCTAssertTrue(samples.filter { !$0.counting }.allSatisfy { $0.status == 200 }, "every /healthz must succeed")
        XCTAssertTrue(samples.filter(\.counting).allSatisfy { [200, 504].contains($0.status) })
        let errors = (try? String(contentsOf: stack.errorLog, encoding: .utf8)) ?? ""
        XCTAssertFalse(errors.contains("no live upstreams"))

        // Retries after a timeout are what spared /healthz: its slow answers were served by the
        // healthy instance after the hung one timed out.
        let retried = samples.filter { !$0.counting && log[$0.target]?.upstreams == [hung, healthy] }
        XCTAssertFalse(retried.isEmpty, "no /healthz was retried after a timeout")
        for sample in retried { XCTAssertEqual(log[sample.target]?.upstreamStatuses, ["504", "200"]) }
        // /count is never sent to a second instance after a timeout.
        XCTAssertTrue(samples.filter(\.counting).allSatisfy { (log[$0.target]?.upstreams.count ?? 1) == 1 })
        XCTAssertGreaterThan(samples.filter { $0.counting && $0.status == 504 }.count, 0, "no /count reached the hung instance")

        // Every request waits at most one read timeout (plus the retry).
        XCTAssertLessThan(samples.map(\.seconds).max() ?? 0, Self.readTimeout + 1.5)
        // Once the hang is noticed, the hung instance only gets an occasional probe.
        let noticed = samples.filter { $0.began > pausedAt + Self.readTimeout + 1 && $0.began < resumedAt }
        let probes = noticed.filter { $0.seconds > 1 }
        XCTAssertGreaterThan(noticed.count, 50)
        // nginx's own probing gives about 2 in this window; one more slow answer is the machine's.
        XCTAssertLessThanOrEqual(probes.count, 4, "requests sent to the hung instance after it was noticed: \(probes.count)")

        // The instance serves again soon after it wakes up, and takes its share.
        let servedByHungAfterWake = samples.filter { $0.began > resumedAt && log[$0.target]?.upstreams.last == hung && $0.status == 200 }
        let firstBack = try XCTUnwrap(servedByHungAfterWake.map(\.began).min(), "the instance never served again")
        print("  the woken instance served again \(String(format: "%.3f", firstBack - resumedAt)) s after SIGCONT; "
              + "requests retried after a timeout: \(retried.count)")
        XCTAssertLessThan(firstBack - resumedAt, 4.0, "back after \(firstBack - resumedAt) s")
        let lastSeconds = samples.filter { $0.began > resumedAt + 3 }
        let share = Double(lastSeconds.filter { log[$0.target]?.upstreams.last == hung }.count) / Double(max(lastSeconds.count, 1))
        XCTAssertGreaterThan(share, 0.3, "share of the woken instance in the last seconds")

        // The hung instance carried out the /count requests it was holding once it woke up:
        // each session counted every request once, whether its client saw 200 or 504.
        let redis = stack.redis.connection()
        for (client, id) in sessions.enumerated() {
            let sent = samples.filter { $0.client == client }.count
            let stored = try XCTUnwrap(Int(redis.send(RedisCommand("HGET", "sid_" + id, "count")).text ?? ""))
            XCTAssertEqual(stored, 1 + sent, "session of client \(client)")
        }
    }

    private func waitForLogEntry(_ stack: SessionStack, target: String) -> AccessLogEntry? {
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            if let entry = AccessLog.entries(stack.accessLog).first(where: { $0.target == target }) { return entry }
            usleep(20_000)
        }
        return nil
    }
}

/// One request of the load: when it began (seconds since the load started), how long it took.
struct Sample: Sendable {
    let client: Int
    let target: String
    let counting: Bool
    let began: Double
    let seconds: Double
    let status: Int
    let count: Int?
}

final class LoadRecorder: @unchecked Sendable {
    // @unchecked: `recorded` is only touched under `lock`.
    private let lock = NSLock()
    private var recorded: [Sample] = []
    func record(_ sample: Sample) { lock.withLock { recorded.append(sample) } }
    var samples: [Sample] { lock.withLock { recorded } }
}

final class Flag: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// What clients saw in each phase of a hang, per route.
struct Report {
    let samples: [Sample]
    let pausedAt: Double
    let resumedAt: Double
    let detection: Double

    var text: String {
        let phases: [(String, ClosedRange<Double>)] = [
            ("before the hang", 0...pausedAt),
            ("hang, first \(Int(detection)) s", pausedAt...(pausedAt + detection)),
            ("hang, later", (pausedAt + detection)...resumedAt),
            ("after SIGCONT", resumedAt...Double.greatestFiniteMagnitude),
        ]
        var lines = ["upstream policy under a hang (SIGSTOP at \(fmt(pausedAt)) s, SIGCONT at \(fmt(resumedAt)) s):"]
        for (route, counting) in [("/healthz (retried after timeout)", false), ("/count (never sent twice)", true)] {
            for (name, range) in phases {
                let here = samples.filter { $0.counting == counting && range.contains($0.began) }
                guard !here.isEmpty else { continue }
                let times = here.map(\.seconds).sorted()
                let statuses = Dictionary(grouping: here, by: \.status).map { "\($0.key)×\($0.value.count)" }.sorted().joined(separator: " ")
                lines.append("  \(route), \(name): \(here.count) requests [\(statuses)], p50 \(fmt(times[times.count / 2])) s, "
                             + "max \(fmt(times.last!)) s, slower than 1 s: \(times.filter { $0 > 1 }.count)")
            }
        }
        return lines.joined(separator: "\n")
    }

    private func fmt(_ value: Double) -> String { String(format: "%.3f", value) }
}
