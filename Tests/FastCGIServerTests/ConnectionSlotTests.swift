import XCTest
@testable import FastCGIServer

/// The descriptor state machine, as pure values: who may move a slot, and which events are
/// recognised as stale.
final class ConnectionSlotTests: XCTestCase {
    func testWordRoundTripsEveryField() {
        for slot in [
            ConnectionSlot.unused,
            ConnectionSlot(state: .busy, kind: .listener, timed: true, served: true, generation: ConnectionSlot.generationMask, deadline: .max),
            ConnectionSlot(state: .armed, kind: .connection, timed: true, served: false, generation: 12345, deadline: 0x8000_0001),
            ConnectionSlot(state: .arming, kind: .connection, timed: false, served: true, generation: 1, deadline: 7),
            ConnectionSlot(state: .armed, kind: .connection, timed: true, served: false, raisedLowWater: true, generation: 3, deadline: 9),
        ] {
            XCTAssertEqual(ConnectionSlot(word: slot.word), slot, "\(slot)")
        }
    }

    func testClaimNeedsTheCurrentGenerationAndAnArmedSlot() throws {
        let armed = ConnectionSlot(state: .armed, kind: .connection, timed: true, served: false, generation: 9, deadline: 100)
        XCTAssertEqual(armed.claimed(by: 9)?.state, .busy)
        XCTAssertNil(armed.claimed(by: 8), "an event armed before a re-arm or a close is stale")
        var arming = armed
        arming.state = .arming
        XCTAssertEqual(arming.claimed(by: 9)?.state, .busy, "the event may arrive before the armer marks the slot armed")
        for state in [ConnectionSlot.State.busy, .free] {
            var other = armed
            other.state = state
            XCTAssertNil(other.claimed(by: 9), "\(state)")
        }
    }

    func testEveryArmingAndEveryCloseTakesANewGeneration() throws {
        let registered = ConnectionSlot.unused.registering(kind: .connection, timed: true, deadline: 50)
        XCTAssertEqual(registered.state, .arming)
        XCTAssertEqual(registered.generation, 1)
        XCTAssertFalse(registered.served)
        let busy = try XCTUnwrap(registered.armedAfterArming()?.claimed(by: 1))
        let rearmed = try XCTUnwrap(busy.rearming(timed: true, deadline: 90, served: true))
        XCTAssertEqual(rearmed.generation, 2)
        XCTAssertTrue(rearmed.served)
        XCTAssertEqual(rearmed.deadline, 90)
        let released = try XCTUnwrap(rearmed.armedAfterArming()?.claimed(by: 2)?.releasedByHolder(generation: 2))
        XCTAssertEqual(released.state, .free)
        XCTAssertEqual(released.generation, 3)
        XCTAssertNil(rearmed.rearming(timed: true, deadline: 1, served: true), "only the holder re-arms")
        XCTAssertNil(busy.releasedByHolder(generation: 2), "a holder with an old generation releases nothing")
    }

    /// Waiting for the rest of a first request keeps the first-request deadline: a peer that
    /// trickles bytes does not earn more time.
    func testWaitingForTheRestKeepsDeadlineAndServedFlag() throws {
        let busy = ConnectionSlot(state: .busy, kind: .connection, timed: true, served: false, generation: 5, deadline: 1234)
        let waiting = try XCTUnwrap(busy.rearming(timed: true, deadline: busy.deadline, served: busy.served, raisedLowWater: true))
        XCTAssertEqual(waiting.deadline, 1234)
        XCTAssertFalse(waiting.served)
        XCTAssertTrue(waiting.raisedLowWater)
        XCTAssertEqual(waiting.generation, 6)
        let claimed = try XCTUnwrap(waiting.armedAfterArming()?.claimed(by: 6))
        XCTAssertTrue(claimed.raisedLowWater, "the next holder learns that SO_RCVLOWAT must be reset")
        XCTAssertFalse(try XCTUnwrap(claimed.rearming(timed: true, deadline: 1, served: true)).raisedLowWater)
    }

    func testGenerationsWrap() {
        let last = ConnectionSlot(state: .busy, kind: .connection, timed: true, served: true, generation: ConnectionSlot.generationMask, deadline: 0)
        XCTAssertEqual(last.rearming(timed: true, deadline: 0, served: true)?.generation, 0)
    }

    func testSweeperTakesOnlyIdleSlots() throws {
        let armed = ConnectionSlot(state: .armed, kind: .connection, timed: true, served: true, generation: 4, deadline: 10)
        let closed = try XCTUnwrap(armed.takenWhileIdle())
        XCTAssertEqual(closed.state, .free)
        XCTAssertEqual(closed.generation, 5)
        var listener = armed
        listener.kind = .listener
        XCTAssertEqual(listener.takenWhileIdle()?.state, .busy, "a paused listener is taken to be resumed, not closed")
        XCTAssertEqual(listener.takenWhileIdle()?.generation, 4)
        for state in [ConnectionSlot.State.arming, .busy, .free] {
            var other = armed
            other.state = state
            XCTAssertNil(other.takenWhileIdle(), "\(state)")
        }
    }

    func testExpiryAcrossTheClockWrap() {
        var slot = ConnectionSlot(state: .armed, kind: .connection, timed: true, served: false, generation: 1, deadline: 5)
        XCTAssertFalse(slot.hasExpired(at: 4))
        XCTAssertTrue(slot.hasExpired(at: 5))
        XCTAssertTrue(slot.hasExpired(at: 6))
        XCTAssertFalse(slot.hasExpired(at: .max - 10), "a deadline just after the wrap is still ahead")
        slot.deadline = .max - 2
        XCTAssertTrue(slot.hasExpired(at: 3), "a deadline just before the wrap has passed")
        slot.timed = false
        XCTAssertFalse(slot.hasExpired(at: 3))
        slot.timed = true
        slot.state = .busy
        XCTAssertFalse(slot.hasExpired(at: 3), "a connection being served is never swept")
    }

    func testTokensCarryDescriptorAndGeneration() {
        let token = ConnectionTable.token(4095, generation: ConnectionSlot.generationMask)
        XCTAssertEqual(ConnectionTable.decode(token).descriptor, 4095)
        XCTAssertEqual(ConnectionTable.decode(token).generation, ConnectionSlot.generationMask)
    }

    /// Making room at the connection limit: silent, then partial, then served; then the earlier deadline,
    /// across the clock wrap.
    func testTheConnectionClosedForRoomIsTheOldestSilentThenTheLeastRecentlyUsed() {
        func slot(served: Bool, partial: Bool = false, deadline: UInt32) -> ConnectionSlot {
            ConnectionSlot(state: .armed, kind: .connection, timed: true, served: served, raisedLowWater: partial, generation: 1,
                           deadline: deadline)
        }
        XCTAssertTrue(slot(served: false, deadline: 900).isClosedForRoom(before: slot(served: false, partial: true, deadline: 100)),
                      "a silent connection before one with part of a request")
        XCTAssertTrue(slot(served: false, partial: true, deadline: 900).isClosedForRoom(before: slot(served: true, deadline: 100)),
                      "part of a first request before one that served")
        XCTAssertTrue(slot(served: false, deadline: 900).isClosedForRoom(before: slot(served: true, deadline: 100)))
        XCTAssertFalse(slot(served: true, deadline: 100).isClosedForRoom(before: slot(served: false, deadline: 900)))
        XCTAssertTrue(slot(served: false, deadline: 100).isClosedForRoom(before: slot(served: false, deadline: 200)))
        XCTAssertTrue(slot(served: true, deadline: 100).isClosedForRoom(before: slot(served: true, deadline: 200)))
        XCTAssertTrue(slot(served: true, deadline: UInt32.max - 5).isClosedForRoom(before: slot(served: true, deadline: 10)), "across the wrap")
        XCTAssertFalse(slot(served: true, deadline: 100).isClosedForRoom(before: slot(served: true, deadline: 100)))
    }
}
