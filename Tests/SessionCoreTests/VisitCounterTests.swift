import XCTest
import SessionCore

final class VisitCounterTests: XCTestCase {
    private var store: InMemorySessionStore!
    private var counter: VisitCounter<InMemorySessionStore>!

    override func setUp() {
        store = InMemorySessionStore()
        counter = VisitCounter(store: store, configuration: SessionConfiguration(idleTimeoutSeconds: 60))
    }

    func testNoCookieStartsASessionAtOne() throws {
        let visit = try counter.countVisit(presented: nil)
        XCTAssertEqual(visit.count, 1)
        XCTAssertTrue(visit.isNewSession)
        XCTAssertEqual(store.field("count", of: visit.sessionID), "1")
    }

    func testExistingSessionCountsOn() throws {
        let first = try counter.countVisit(presented: nil)
        let second = try counter.countVisit(presented: first.sessionID)
        let third = try counter.countVisit(presented: first.sessionID)
        XCTAssertEqual([second.count, third.count], [2, 3])
        XCTAssertEqual(third.sessionID, first.sessionID)
        XCTAssertFalse(third.isNewSession)
    }

    func testUnknownIDIsNeverAdopted() throws {
        let forged = SessionID.generate()
        let visit = try counter.countVisit(presented: forged)
        XCTAssertNotEqual(visit.sessionID, forged)
        XCTAssertTrue(visit.isNewSession)
        XCTAssertEqual(visit.count, 1)
        XCTAssertFalse(store.liveSessionIDs.contains(forged))
    }

    func testIdleSessionExpiresAndEachVisitSlidesTheTimeout() throws {
        let first = try counter.countVisit(presented: nil)
        store.now += 50
        XCTAssertEqual(try counter.countVisit(presented: first.sessionID).count, 2)
        store.now += 50   // 100 s after creation but only 50 s idle: still alive
        XCTAssertEqual(try counter.countVisit(presented: first.sessionID).count, 3)
        store.now += 61
        let afterExpiry = try counter.countVisit(presented: first.sessionID)
        XCTAssertNotEqual(afterExpiry.sessionID, first.sessionID)
        XCTAssertEqual(afterExpiry.count, 1)
    }

    func testStoreFailureIsReported() {
        store.failure = .unavailable("down")
        XCTAssertThrowsError(try counter.countVisit(presented: nil)) { error in
            XCTAssertEqual(error as? SessionStoreError, .unavailable("down"))
        }
    }
}
