import Dispatch
import Synchronization
import XCTest
@testable import FastCGIServer

/// The races of the hand-off, replayed in each order, then hammered from several threads.
final class ConnectionTableTests: XCTestCase {
    private let fd: Int32 = 5

    /// Accept: register, (epoll add), finish arming. Returns the generation of the event.
    private func accept(_ table: ConnectionTable, deadline: UInt32 = 100) -> UInt32 {
        let generation = table.register(fd, kind: .connection, timed: true, deadline: deadline)
        table.finishArming(fd, generation: generation)
        return generation
    }

    private func expired(_ now: UInt32) -> (ConnectionSlot) -> Bool { { $0.hasExpired(at: now) } }

    func testSweeperFirstMakesTheWorkersEventStale() {
        let table = ConnectionTable(capacity: 16)
        let event = accept(table)
        XCTAssertNotNil(table.takeIdle(fd, if: expired(200)))
        XCTAssertNil(table.claim(fd, generation: event))
        XCTAssertEqual(table.slot(fd).state, .free)
    }

    func testWorkerFirstKeepsTheSweeperAway() {
        let table = ConnectionTable(capacity: 16)
        let event = accept(table)
        XCTAssertEqual(table.claim(fd, generation: event)?.state, .busy)
        XCTAssertNil(table.takeIdle(fd, if: expired(200)), "never close a connection being served")
        XCTAssertEqual(table.slot(fd).state, .busy)
    }

    func testReArmedConnectionIsNotSweptWithItsOldDeadline() throws {
        let table = ConnectionTable(capacity: 16)
        let event = accept(table, deadline: 100)
        XCTAssertEqual(table.claim(fd, generation: event)?.state, .busy)
        let next = try XCTUnwrap(table.rearm(fd, generation: event, timed: true, deadline: 75_100, served: true))
        table.finishArming(fd, generation: next)
        XCTAssertNil(table.takeIdle(fd, if: expired(200)))
        XCTAssertNil(table.claim(fd, generation: event), "the first event's generation is spent")
        XCTAssertEqual(table.claim(fd, generation: next)?.state, .busy)
    }

    /// Closed by the sweeper, the number reused by accept: the old event must not serve the
    /// new connection, the new event must.
    func testStaleEventNeverServesAReusedDescriptor() {
        let table = ConnectionTable(capacity: 16)
        let old = accept(table)
        XCTAssertNotNil(table.takeIdle(fd, if: expired(200)))
        let new = accept(table, deadline: 300)
        XCTAssertNotEqual(old, new)
        XCTAssertNil(table.claim(fd, generation: old))
        XCTAssertEqual(table.claim(fd, generation: new)?.state, .busy)
    }

    /// libfcgi closed the descriptor inside FCGX_Accept_r and accept(2) handed the number to a
    /// new connection before the worker freed the slot: the worker must not free the new one.
    func testLateReleaseAfterLibfcgiClosedLeavesTheNewConnectionAlone() {
        let table = ConnectionTable(capacity: 16)
        let old = accept(table)
        XCTAssertEqual(table.claim(fd, generation: old)?.state, .busy)
        let new = accept(table)
        XCTAssertFalse(table.release(fd, generation: old))
        XCTAssertEqual(table.slot(fd).state, .armed)
        XCTAssertEqual(table.claim(fd, generation: new)?.state, .busy)
    }

    /// The event arrives between epoll_ctl and the armer's finishArming: the woken worker takes
    /// it, and the armer's late finishArming must not mark the claimed slot armed (nor the slot
    /// a second re-arm produced).
    func testLateFinishArmingDoesNotUndoAClaim() throws {
        let table = ConnectionTable(capacity: 16)
        let first = table.register(fd, kind: .connection, timed: true, deadline: 100)
        XCTAssertEqual(table.claim(fd, generation: first)?.state, .busy)
        let second = try XCTUnwrap(table.rearm(fd, generation: first, timed: true, deadline: 100, served: true))
        table.finishArming(fd, generation: first)
        XCTAssertEqual(table.slot(fd).state, .arming, "the first armer's late call changes nothing")
        XCTAssertNil(table.takeIdle(fd, if: expired(200)), "an arming slot may not be in epoll yet: never swept")
        table.finishArming(fd, generation: second)
        XCTAssertEqual(table.slot(fd).state, .armed)
    }

    func testDescriptorsOutsideTheTableAreNeverClaimed() {
        let table = ConnectionTable(capacity: 4)
        XCTAssertFalse(table.contains(4))
        XCTAssertFalse(table.contains(-1))
        XCTAssertNil(table.claim(4, generation: 0))
        XCTAssertNil(table.claim(-1, generation: 0))
    }

    /// Workers claim and re-arm, a sweeper closes idle slots and an acceptor reuses the number,
    /// all at once: a connection is never held by two at a time, and never lost.
    func testConcurrentHandOffsKeepOneOwner() {
        let table = ConnectionTable(capacity: 16)
        let fd = self.fd
        let holders = Atomic<Int>(0)
        let doubleHolds = Atomic<Int>(0)
        let claims = Atomic<Int>(0)
        _ = accept(table)
        let rounds = 200_000
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for round in 0..<rounds {
                let slot = table.slot(fd)
                if thread == 3 {
                    // The sweeper (and, after a close, the acceptor reusing the number).
                    if round % 7 == 0, table.takeIdle(fd, if: { $0.state == .armed }) != nil {
                        let generation = table.register(fd, kind: .connection, timed: true, deadline: 0)
                        table.finishArming(fd, generation: generation)
                    }
                    continue
                }
                // A worker woken with the generation it saw (possibly stale by now).
                guard table.claim(fd, generation: slot.generation) != nil else { continue }
                claims.add(1, ordering: .relaxed)
                if holders.add(1, ordering: .acquiringAndReleasing).newValue > 1 { doubleHolds.add(1, ordering: .relaxed) }
                holders.subtract(1, ordering: .acquiringAndReleasing)
                if let next = table.rearm(fd, generation: slot.generation, timed: true, deadline: 0, served: true) {
                    table.finishArming(fd, generation: next)
                } else {
                    doubleHolds.add(1, ordering: .relaxed)  // the holder could not hand it back
                }
            }
        }
        XCTAssertEqual(doubleHolds.load(ordering: .relaxed), 0)
        XCTAssertGreaterThan(claims.load(ordering: .relaxed), 1000)
        XCTAssertTrue([.armed, .arming].contains(table.slot(fd).state), "\(table.slot(fd))")
    }
}
