import XCTest
import SessionCore

/// The lifecycle logic over the in-memory store, with a clock the tests move.
final class SessionManagerTests: XCTestCase {
    private var store: InMemorySessionStore!
    private var manager: SessionManager<InMemorySessionStore>!

    override func setUp() {
        store = InMemorySessionStore()
        manager = SessionManager(store: store, timeouts: SessionTimeouts(idleSeconds: 60, absoluteSeconds: 600), rotationGraceSeconds: 10)
    }

    func testNoCookieStartsASessionAtOne() throws {
        let visit = try manager.countVisit(presented: nil)
        XCTAssertEqual(visit.count, 1)
        XCTAssertTrue(visit.isNewSession)
        XCTAssertEqual(store.field("count", of: visit.sessionID), "1")
    }

    func testExistingSessionCountsOn() throws {
        let first = try manager.countVisit(presented: nil)
        XCTAssertEqual(try manager.countVisit(presented: first.sessionID).count, 2)
        let third = try manager.countVisit(presented: first.sessionID)
        XCTAssertEqual(third.count, 3)
        XCTAssertEqual(third.sessionID, first.sessionID)
        XCTAssertFalse(third.isNewSession)
    }

    func testUnknownIDIsNeverAdopted() throws {
        let forged = SessionID.generate()
        let visit = try manager.countVisit(presented: forged)
        XCTAssertNotEqual(visit.sessionID, forged)
        XCTAssertEqual(visit.count, 1)
        XCTAssertFalse(store.liveSessionIDs.contains(forged))
    }

    func testIdleTimeoutSlidesAndAbsoluteTimeoutDoesNot() throws {
        let first = try manager.countVisit(presented: nil)
        for expected in 2...10 {
            store.now += 50   // always within the 60 s idle timeout
            XCTAssertEqual(try manager.countVisit(presented: first.sessionID).count, Int64(expected))
        }
        store.now += 160      // 610 s after creation: past the 600 s absolute lifetime
        let after = try manager.countVisit(presented: first.sessionID)
        XCTAssertTrue(after.isNewSession)
        XCTAssertNotEqual(after.sessionID, first.sessionID)
    }

    func testIdleSessionExpires() throws {
        let first = try manager.countVisit(presented: nil)
        store.now += 61
        XCTAssertTrue(try manager.countVisit(presented: first.sessionID).isNewSession)
    }

    func testLoginRotatesTheIDKeepsDataAndLeavesAGraceAlias() throws {
        let anonymous = try manager.countVisit(presented: nil)
        try manager.change(anonymous.sessionID, set: [("theme", "dark")])
        store.now += 5
        let record = try manager.login(user: "ada", presented: anonymous.sessionID, userAgent: "Test/1")
        XCTAssertNotEqual(record.id, anonymous.sessionID)
        XCTAssertEqual(record.owner?.userID, "ada")
        XCTAssertEqual(record.attributes["theme"], "dark")
        XCTAssertEqual(record.attributes["count"], "1")
        XCTAssertEqual(record.createdAt, 1_000_000, "rotation keeps the creation time (and so the absolute lifetime)")
        XCTAssertNotNil(record.csrfToken)
        // In-flight requests with the old id still land in the new session for the grace period...
        XCTAssertEqual(try manager.resolve(anonymous.sessionID)?.id, record.id)
        XCTAssertEqual(try manager.countVisit(presented: anonymous.sessionID).sessionID, record.id)
        // ...and not after it.
        store.now += 11
        XCTAssertNil(try manager.resolve(anonymous.sessionID))
        XCTAssertEqual(try manager.resolve(record.id)?.owner?.userID, "ada")
    }

    func testLoggingInAsAnotherUserNeverInheritsTheirSession() throws {
        let bob = try manager.login(user: "bob", presented: nil, userAgent: nil)
        try manager.change(bob.id, set: [("secret", "bob's")])
        let ada = try manager.login(user: "ada", presented: bob.id, userAgent: nil)
        XCTAssertNil(ada.attributes["secret"], "ada must not see bob's data")
        XCTAssertEqual(ada.owner?.userID, "ada")
        XCTAssertNil(try manager.resolve(bob.id), "bob's session on this browser ends")
        XCTAssertEqual(try manager.sessions(of: "bob").count, 0)
    }

    func testZeroGraceEndsTheOldIDAtOnce() throws {
        manager.rotationGraceSeconds = 0
        let anonymous = try manager.countVisit(presented: nil)
        let record = try manager.login(user: "ada", presented: anonymous.sessionID, userAgent: nil)
        XCTAssertNil(try manager.resolve(anonymous.sessionID))
        XCTAssertNotNil(try manager.resolve(record.id))
    }

    func testRevokeAllEndsEverySessionOfTheUserOnly() throws {
        let first = try manager.login(user: "ada", presented: nil, userAgent: "A")
        let second = try manager.login(user: "ada", presented: nil, userAgent: "B")
        let other = try manager.login(user: "bob", presented: nil, userAgent: "C")
        XCTAssertEqual(try manager.sessions(of: "ada").count, 2)
        try manager.revokeAll(of: "ada")
        XCTAssertNil(try manager.resolve(first.id))
        XCTAssertTrue(try manager.countVisit(presented: second.id).isNewSession)
        XCTAssertNotNil(try manager.resolve(other.id))
        XCTAssertEqual(try manager.sessions(of: "ada").count, 0)
        // Logging in again after the revocation works.
        XCTAssertNotNil(try manager.resolve(try manager.login(user: "ada", presented: nil, userAgent: nil).id))
    }

    func testUserListsAndEndsTheirSessionsByHandle() throws {
        let first = try manager.login(user: "ada", presented: nil, userAgent: "Phone")
        let second = try manager.login(user: "ada", presented: nil, userAgent: "Laptop")
        let listed = try manager.sessions(of: "ada")
        XCTAssertEqual(Set(listed.map(\.handle)), [first.handle, second.handle])
        XCTAssertFalse(listed.contains { $0.handle == $0.id.rawValue }, "the handle is not the id")
        XCTAssertTrue(try manager.end(handle: first.handle, of: "ada"))
        XCTAssertFalse(try manager.end(handle: first.handle, of: "ada"))
        XCTAssertFalse(try manager.end(handle: second.handle, of: "bob"), "users end only their own sessions")
        XCTAssertNil(try manager.resolve(first.id))
        XCTAssertNotNil(try manager.resolve(second.id))
    }

    func testLogoutCannotBeUndoneByALaterWrite() throws {
        let record = try manager.login(user: "ada", presented: nil, userAgent: nil)
        try manager.destroy(record)
        XCTAssertThrowsError(try manager.change(record.id, set: [("late", "write")])) { error in
            XCTAssertEqual(error as? SessionError, .notFound)
        }
        XCTAssertNil(try manager.resolve(record.id))
        XCTAssertFalse(store.liveSessionIDs.contains(record.id))
    }

    func testAttributeNamesAndSizeAreChecked() throws {
        manager.limits = SessionLimits(maxAttributes: 2, maxBytes: 100)
        let record = try manager.start()
        XCTAssertThrowsError(try manager.change(record.id, set: [("_u", "admin")])) { error in
            XCTAssertEqual(error as? SessionError, .invalidAttributeName("_u"))
        }
        XCTAssertThrowsError(try manager.change(record.id, set: [("bad name", "x")]))
        try manager.change(record.id, set: [("a", "1"), ("b", "2")])
        XCTAssertThrowsError(try manager.change(record.id, set: [("c", "3")])) { error in
            XCTAssertEqual(error as? SessionError, .tooLarge)
        }
        XCTAssertThrowsError(try manager.login(user: "no spaces allowed", presented: nil, userAgent: nil))
    }

    func testStoreFailureIsReported() {
        store.failure = .unavailable("down")
        XCTAssertThrowsError(try manager.countVisit(presented: nil)) { error in
            XCTAssertEqual(error as? SessionError, .store(.unavailable("down")))
        }
    }
}
