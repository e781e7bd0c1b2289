import XCTest
@testable import SessionApp

/// The bound on password checks: `permits` run at once, up to `admitted` logins are let in
/// (running or waiting), and the rest are refused at once, without waiting.
final class PasswordCheckGateTests: XCTestCase {
    func testLoginsBeyondTheAdmittedAreRefusedAtOnceAndWaitersTimeOut() {
        let gate = PasswordCheckGate(permits: 1, waitMilliseconds: 300, threads: 8, activeThreads: 2)
        XCTAssertEqual(gate.admitted, 3, "one running, two waiting")
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        // One check runs (and holds its permit) on another thread; one more waits for it.
        Thread.detachNewThread { _ = gate.run { entered.signal(); release.wait(); return true } }
        entered.wait()
        let waiterResult = Locked<Bool??>(.none)
        let waiterDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread { let result = gate.run { true }; waiterResult.withLock { $0 = .some(result) }; waiterDone.signal() }
        XCTAssertTrue(Self.eventually { gate.loginsInside == 2 }, "the waiter is inside")
        // A third is admitted but finds no permit: it waits its 300 ms, then gives up.
        var started = Date()
        XCTAssertNil(gate.run { true })
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.25)
        XCTAssertLessThan(Date().timeIntervalSince(started), 2, "the deadline is on the clock the wait counts on")
        // With the first still running and a waiter in, a fourth and fifth inside the admitted
        // number: here the waiter has timed out too by now, so fill the places again.
        waiterDone.wait()
        XCTAssertEqual(waiterResult.withLock { $0 }, .some(nil), "the waiter timed out as well")
        let waitersIn = DispatchSemaphore(value: 0), waitersOut = DispatchSemaphore(value: 0)
        for _ in 0..<2 { Thread.detachNewThread { waitersIn.signal(); _ = gate.run { true }; waitersOut.signal() } }
        waitersIn.wait(); waitersIn.wait()
        XCTAssertTrue(Self.eventually { gate.loginsInside == 3 }, "both waiters are inside")
        started = Date()
        XCTAssertNil(gate.run { true }, "three in already: refused")
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.1, "refused at once, not after a wait")
        release.signal()
        waitersOut.wait(); waitersOut.wait()
        XCTAssertEqual(gate.run { 42 }, 42, "free again")
    }

    /// Polls `condition` for up to 10 s (threads started by the test may be scheduled late).
    private static func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if condition() { return true }
            usleep(1_000)
        }
        return condition()
    }

    func testTheAdmittedNumberLeavesAStandbyWorker() {
        XCTAssertEqual(PasswordCheckGate(permits: 4, waitMilliseconds: 0, threads: 8, activeThreads: 2).admitted, 5)
        XCTAssertEqual(PasswordCheckGate(permits: 1, waitMilliseconds: 0, threads: 2, activeThreads: 2).admitted, 1)
        XCTAssertEqual(PasswordCheckGate(permits: 2, waitMilliseconds: 0, threads: 64, activeThreads: 2).admitted, 6)
    }
}
