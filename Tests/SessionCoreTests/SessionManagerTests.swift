import XCTest
import SessionCore

extension SessionManager.Visit {
    var sessionID: SessionID? {
        if case .counted(let id, _, _) = self { return id }
        return nil
    }
    var count: Int64? {
        if case .counted(_, let count, _) = self { return count }
        return nil
    }
    var isNewSession: Bool {
        if case .counted(_, _, let isNew) = self { return isNew }
        return false
    }
}

/// The lifecycle logic over the in-memory store, with a clock the tests move.
final class SessionManagerTests: XCTestCase {
    private var store: InMemorySessionStore!
    private var manager: SessionManager<InMemorySessionStore>!

    override func setUp() {
        store = InMemorySessionStore()
        manager = SessionManager(store: store, timeouts: SessionTimeouts(idleSeconds: 60, absoluteSeconds: 600),
                                 limits: SessionLimits(maxSessionsPerUser: 3), rotationGraceSeconds: 10)
    }

    private func newSession() throws -> SessionID {
        try XCTUnwrap(manager.countVisit(presented: nil).sessionID)
    }

    private func record(_ id: SessionID) throws -> SessionRecord {
        try XCTUnwrap(manager.resolve(id, touch: false).record)
    }

    func testNoCookieStartsASessionAtOne() throws {
        let visit = try manager.countVisit(presented: nil)
        XCTAssertEqual(visit.count, 1)
        XCTAssertTrue(visit.isNewSession)
        XCTAssertEqual(store.field("count", of: try XCTUnwrap(visit.sessionID)), "1")
    }

    func testExistingSessionCountsOn() throws {
        let id = try newSession()
        XCTAssertEqual(try manager.countVisit(presented: id).count, 2)
        let third = try manager.countVisit(presented: id)
        XCTAssertEqual(third, .counted(sessionID: id, count: 3, isNewSession: false))
    }

    func testUnknownIDIsNeverAdopted() throws {
        let forged = SessionID.generate()
        let visit = try manager.countVisit(presented: forged)
        XCTAssertNotEqual(visit.sessionID, forged)
        XCTAssertEqual(visit.count, 1)
        XCTAssertFalse(store.liveSessionIDs.contains(forged))
    }

    func testIdleTimeoutSlidesAndAbsoluteTimeoutDoesNot() throws {
        let id = try newSession()
        for expected in 2...10 {
            store.now += 50   // always within the 60 s idle timeout
            XCTAssertEqual(try manager.countVisit(presented: id).count, Int64(expected))
        }
        store.now += 160      // 610 s after creation: past the 600 s absolute lifetime
        let after = try manager.countVisit(presented: id)
        XCTAssertTrue(after.isNewSession)
        XCTAssertNotEqual(after.sessionID, id)
    }

    func testIdleSessionExpires() throws {
        let id = try newSession()
        store.now += 61
        XCTAssertTrue(try manager.countVisit(presented: id).isNewSession)
    }

    func testPageVisitCountsAndReadsInOneStoreCall() throws {
        let id = try newSession()
        let before = store.calls
        guard case .existing(let record) = try manager.visitPage(presented: id) else { return XCTFail("not found") }
        XCTAssertEqual(record.visitCount, 2)
        XCTAssertEqual(store.calls - before, 1)
        guard case .started(let fresh) = try manager.visitPage(presented: nil) else { return XCTFail("no session started") }
        XCTAssertEqual(try self.record(fresh).visitCount, 1)
    }

    func testLoginRotatesTheIDAndKeepsTheData() throws {
        let anonymous = try newSession()
        store.now += 5
        let logged = try manager.login(user: "ada", current: manager.resolve(anonymous), userAgent: "Test/1")
        XCTAssertNotEqual(logged.id, anonymous)
        XCTAssertEqual(logged.user, "ada")
        XCTAssertEqual(logged.visitCount, 1)
        XCTAssertEqual(logged.createdAt, 1_000_000, "rotation keeps the creation time (and so the absolute lifetime)")
        XCTAssertNotNil(logged.csrfToken)
        XCTAssertEqual(try record(logged.id), logged, "the record login returns is the one stored")
    }

    /// The stored user agent is bounded in bytes, not Characters (attack review s19: "a" and
    /// 3 000 combining marks is one Character, and 6 KB were stored and shown), cut between
    /// scalars.
    func testTheStoredUserAgentIsBoundedInBytes() throws {
        let zalgo = "a" + String(repeating: "\u{301}", count: 3000)
        let logged = try manager.login(user: "ada", current: .none, userAgent: zalgo)
        let stored = try XCTUnwrap(logged.userAgent)
        XCTAssertLessThanOrEqual(stored.utf8.count, 256)
        XCTAssertEqual(stored.utf8.count, 255, "1 + 127 two-byte marks: the next would pass 256")
        XCTAssertEqual("caf\u{E9}".prefix(utf8Bytes: 4), "caf", "never half a scalar")
        XCTAssertEqual("short".prefix(utf8Bytes: 256), "short")
        XCTAssertEqual("\u{1F600}x".prefix(utf8Bytes: 3), "")
    }

    /// Review finding 1: whoever knows the pre-login id (an attacker who planted it) must not
    /// reach the logged-in session in any way, and the browser's own in-flight requests with
    /// it must not be answered in a way that replaces the new cookie.
    func testThePreLoginIDLeadsNowhereAfterLogin() throws {
        let planted = try newSession()
        let logged = try manager.login(user: "ada", current: manager.resolve(planted), userAgent: nil)
        XCTAssertEqual(try manager.resolve(planted), .superseded, "no record, no user, no CSRF token")
        XCTAssertEqual(try manager.countVisit(presented: planted), .superseded, "no new session, so no Set-Cookie")
        XCTAssertEqual(try manager.visitPage(presented: planted), .superseded)
        XCTAssertThrowsError(try manager.change(planted, set: [("x", "1")])) { XCTAssertEqual($0 as? SessionError, .notFound) }
        XCTAssertEqual(try record(logged.id).attributes, [:], "nothing was written through the old id")
        XCTAssertEqual(try record(logged.id).visitCount, 1, "nothing was counted through the old id")
        XCTAssertFalse(store.liveSessionIDs.contains(planted))
        // After the grace period the old id is simply unknown: a fresh anonymous session.
        store.now += 11
        let later = try manager.countVisit(presented: planted)
        XCTAssertTrue(later.isNewSession)
        XCTAssertNotEqual(later.sessionID, logged.id)
        XCTAssertEqual(try record(try XCTUnwrap(later.sessionID)).user, nil)
    }

    /// A rotation that does not change who the session belongs to may keep an alias: whoever
    /// holds the old id already had exactly this session.
    func testSameUserRotationKeepsAWorkingAliasForTheGracePeriod() throws {
        let first = try manager.login(user: "ada", current: .none, userAgent: nil)
        let second = try manager.login(user: "ada", current: .live(first), userAgent: nil)
        XCTAssertEqual(second.handle, first.handle, "the same session in the user's list")
        XCTAssertEqual(try manager.resolve(first.id).record?.id, second.id)
        XCTAssertEqual(try manager.countVisit(presented: first.id).sessionID, second.id)
        XCTAssertEqual(try manager.sessions(of: "ada").map(\.reference), [store.reference(to: second.id)])
        store.now += 11
        XCTAssertEqual(try manager.resolve(first.id), .none)
        // A plain regeneration keeps the owner and leaves an alias too.
        let third = try manager.regenerate(try record(second.id))
        XCTAssertEqual(third.user, "ada")
        XCTAssertEqual(try manager.resolve(second.id).record?.id, third.id)
    }

    func testTwoQuickSameUserRotationsAreFollowedAcrossBothAliases() throws {
        let first = try manager.login(user: "ada", current: .none, userAgent: nil)
        let second = try manager.login(user: "ada", current: .live(first), userAgent: nil)
        let third = try manager.login(user: "ada", current: .live(second), userAgent: nil)
        XCTAssertEqual(try manager.resolve(first.id).record?.id, third.id)
    }

    func testLoggingInAsAnotherUserNeverInheritsTheirSession() throws {
        let bob = try manager.login(user: "bob", current: .none, userAgent: nil)
        try manager.change(bob.id, set: [("secret", "bob's")])
        let ada = try manager.login(user: "ada", current: manager.resolve(bob.id), userAgent: nil)
        XCTAssertNil(ada.attributes["secret"], "ada must not see bob's data")
        XCTAssertEqual(ada.user, "ada")
        XCTAssertEqual(try manager.resolve(bob.id), .none, "bob's session on this browser ends")
        XCTAssertEqual(try manager.sessions(of: "bob").count, 0)
    }

    func testLoginWithASupersededIDStartsAFreshSession() throws {
        let planted = try newSession()
        _ = try manager.login(user: "ada", current: manager.resolve(planted), userAgent: nil)
        let again = try manager.login(user: "ada", current: manager.resolve(planted), userAgent: nil)
        XCTAssertEqual(again.visitCount, 0, "nothing of the old session")
        XCTAssertEqual(try manager.sessions(of: "ada").count, 2)
    }

    func testZeroGraceEndsTheOldIDAtOnce() throws {
        manager.rotationGraceSeconds = 0
        let anonymous = try newSession()
        let logged = try manager.login(user: "ada", current: manager.resolve(anonymous), userAgent: nil)
        XCTAssertEqual(try manager.resolve(anonymous), .none)
        XCTAssertNotNil(try manager.resolve(logged.id).record)
    }

    /// Review finding 3: live sessions per user are capped; a login past the cap ends the oldest.
    func testTheOldestSessionEndsWhenAUserPassesTheCap() throws {
        var sessions: [SessionRecord] = []
        for _ in 0..<3 {
            sessions.append(try manager.login(user: "ada", current: .none, userAgent: nil))
            store.now += 1
        }
        let fourth = try manager.login(user: "ada", current: .none, userAgent: nil)
        XCTAssertEqual(try manager.resolve(sessions[0].id), .none, "the oldest ended")
        XCTAssertEqual(Set(try manager.sessions(of: "ada").map(\.reference)), Set([sessions[1].id, sessions[2].id, fourth.id].map(store.reference(to:))))
        // Sessions that ended by themselves do not count against the cap.
        try manager.end(try record(sessions[1].id))
        _ = try manager.login(user: "ada", current: .none, userAgent: nil)
        XCTAssertNotNil(try manager.resolve(sessions[2].id).record, "a free place was used, nobody was ended")
    }

    func testListingIsBoundedInStoreCallsWhateverTheNumberOfSessions() throws {
        manager.limits.maxSessionsPerUser = 50
        for _ in 0..<40 { _ = try manager.login(user: "ada", current: .none, userAgent: nil) }
        let before = store.calls
        XCTAssertEqual(try manager.sessions(of: "ada").count, 40)
        XCTAssertEqual(store.calls - before, 2, "index, then every session in one call")
    }

    func testRevokeAllEndsEverySessionOfTheUserOnly() throws {
        let first = try manager.login(user: "ada", current: .none, userAgent: "A")
        let second = try manager.login(user: "ada", current: .none, userAgent: "B")
        let other = try manager.login(user: "bob", current: .none, userAgent: "C")
        XCTAssertEqual(try manager.sessions(of: "ada").count, 2)
        XCTAssertEqual(try manager.revokeAll(of: "ada"), 2)
        XCTAssertEqual(try manager.resolve(first.id), .none)
        XCTAssertTrue(try manager.countVisit(presented: second.id).isNewSession)
        XCTAssertNotNil(try manager.resolve(other.id).record)
        XCTAssertEqual(try manager.sessions(of: "ada").count, 0)
        // Logging in again after the revocation works.
        XCTAssertNotNil(try manager.resolve(try manager.login(user: "ada", current: .none, userAgent: nil).id).record)
        XCTAssertThrowsError(try manager.revokeAll(of: "not a user id"))
    }

    /// Found by an attack pass: revoke-all took the index away in its first call, so when the
    /// call deleting the sessions failed (a lost connection, a failover), a retry found nothing
    /// to end and every session stayed alive, unlisted. A failure at any step now leaves the
    /// entries, and the retry ends what is left.
    func testRevokeAllThatFailsMidwayEndsEverySessionWhenRetried() throws {
        for failingStep in 2...3 {
            let user = "ada\(failingStep)"
            let first = try manager.login(user: user, current: .none, userAgent: "A")
            let second = try manager.login(user: user, current: .none, userAgent: "B")
            store.failingCall = store.calls + failingStep
            XCTAssertThrowsError(try manager.revokeAll(of: user), "step \(failingStep) fails")
            if failingStep == 2 {
                XCTAssertNotNil(try manager.resolve(first.id).record, "the sessions were not deleted")
                XCTAssertEqual(try manager.sessions(of: user).count, 2, "and are still listed, for the retry")
            }
            XCTAssertEqual(try manager.revokeAll(of: user), failingStep == 2 ? 2 : 0, "the retry after step \(failingStep) failed")
            XCTAssertEqual(try manager.resolve(first.id), .none)
            XCTAssertEqual(try manager.resolve(second.id), .none)
            XCTAssertEqual(try store.indexedSessions(of: user).count, 0, "the index is emptied once the sessions are gone")
        }
    }

    /// Found by an attack pass (s21): a re-login wrote its session, then failed to index it (a
    /// node refusing writes, a timeout, a crash between the two round trips). The old cookie's
    /// alias led to that logged-in session, which revoke-all, the user's list and the cap never
    /// saw. Whatever store call of a login fails, every live session of the user is now indexed,
    /// so revoke-all ends them all.
    func testALoginFailingAtAnyStepLeavesNoSessionThatRevokeAllMisses() throws {
        for failingStep in 1...6 {
            let user = "ada\(failingStep)"
            let first = try manager.login(user: user, current: .none, userAgent: "A")
            store.failingCall = store.calls + failingStep
            let relogin = Result { try manager.login(user: user, current: .live(first), userAgent: "A") }
            store.failingCall = nil
            // The old cookie follows its alias wherever the login got to.
            let followed = try manager.resolve(first.id).record
            let indexed = Set(try store.indexedSessions(of: user).map(\.session))
            for id in store.liveSessionIDs where store.field(ReservedField.user, of: id) == user {
                XCTAssertTrue(indexed.contains(store.reference(to: id)),
                              "step \(failingStep) failed (\(relogin)): a live session of the user is not indexed")
            }
            try manager.revokeAll(of: user)
            XCTAssertEqual(store.liveSessionIDs.filter { store.field(ReservedField.user, of: $0) == user }, [],
                           "step \(failingStep): revoke-all left a session of the user")
            if let followed { XCTAssertEqual(try manager.resolve(followed.id), .none) }
            XCTAssertEqual(try manager.resolve(first.id), .none)
        }
        // From an anonymous session: the same, and a login that fails at its first index
        // write (before the rotation) leaves the browser its session and data (diff review s21).
        for failingStep in 1...6 {
            let user = "bob\(failingStep)"
            let anonymous = try newSession()
            _ = try manager.countVisit(presented: anonymous)
            let before = store.calls
            store.failingCall = before + failingStep
            let login = Result { try manager.login(user: user, current: manager.resolve(anonymous, touch: false), userAgent: "B") }
            store.failingCall = nil
            let indexed = Set(try store.indexedSessions(of: user).map(\.session))
            for id in store.liveSessionIDs where store.field(ReservedField.user, of: id) == user {
                XCTAssertTrue(indexed.contains(store.reference(to: id)), "anonymous, step \(failingStep) failed (\(login)): a live session of the user is not indexed")
            }
            if failingStep == 3, case .failure = login {  // resolve, generation, then the first index write
                XCTAssertEqual(try manager.resolve(anonymous).record?.visitCount, 2, "the failed login cost the browser its session")
            }
            try manager.revokeAll(of: user)
            XCTAssertEqual(store.liveSessionIDs.filter { store.field(ReservedField.user, of: $0) == user }, [])
        }
    }

    /// A login indexes its session before writing it, so listing the user's sessions meanwhile
    /// must not forget that young entry (the session would then live unindexed); an entry whose
    /// session never came is forgotten once older than the grace period.
    func testListingKeepsAYoungEntryWhoseSessionIsOnItsWay() throws {
        let handle = SessionID.generate().rawValue
        let coming = SessionID.generate()
        XCTAssertNotNil(try store.index(handle: handle, id: coming, of: "ada", generation: 0))
        XCTAssertEqual(try manager.sessions(of: "ada").count, 0)
        XCTAssertEqual(try store.indexedSessions(of: "ada").map(\.handle), [handle], "a young entry is kept")
        store.now += Int64(59)
        _ = try manager.sessions(of: "ada")
        XCTAssertEqual(try store.indexedSessions(of: "ada").count, 1)
        store.now += Int64(1)
        _ = try manager.sessions(of: "ada")
        XCTAssertEqual(try store.indexedSessions(of: "ada").count, 0, "forgotten after the grace period")
    }

    func testUserListsAndEndsTheirSessionsByHandle() throws {
        let first = try manager.login(user: "ada", current: .none, userAgent: "Phone")
        let second = try manager.login(user: "ada", current: .none, userAgent: "Laptop")
        let listed = try manager.sessions(of: "ada")
        XCTAssertEqual(Set(listed.map(\.handle)), [first.handle, second.handle])
        XCTAssertFalse(listed.contains { $0.handle == $0.reference.rawValue }, "the handle is not the id")
        XCTAssertTrue(try manager.end(handle: first.handle, of: "ada"))
        XCTAssertFalse(try manager.end(handle: first.handle, of: "ada"))
        XCTAssertFalse(try manager.end(handle: second.handle, of: "bob"), "users end only their own sessions")
        XCTAssertEqual(try manager.resolve(first.id), .none)
        XCTAssertNotNil(try manager.resolve(second.id).record)
    }

    func testLogoutCannotBeUndoneByALaterWrite() throws {
        let record = try manager.login(user: "ada", current: .none, userAgent: nil)
        try manager.end(record)
        XCTAssertThrowsError(try manager.change(record.id, set: [("late", "write")])) { error in
            XCTAssertEqual(error as? SessionError, .notFound)
        }
        XCTAssertEqual(try manager.resolve(record.id), .none)
        XCTAssertFalse(store.liveSessionIDs.contains(record.id))
    }

    func testAttributeNamesAndSizeAreChecked() throws {
        manager.limits = SessionLimits(maxAttributes: 2, maxBytes: 100)
        let record = try manager.login(user: "ada", current: .none, userAgent: nil)
        for reserved in ["_u", "count", "_t"] {
            XCTAssertThrowsError(try manager.change(record.id, set: [(reserved, "x")])) { error in
                XCTAssertEqual(error as? SessionError, .invalidAttributeName(reserved), "reserved names stay reserved")
            }
        }
        XCTAssertThrowsError(try manager.change(record.id, set: [("bad name", "x")]))
        try manager.change(record.id, set: [("a", "1"), ("b", "2")])
        XCTAssertThrowsError(try manager.change(record.id, set: [("c", "3")])) { error in
            XCTAssertEqual(error as? SessionError, .tooLarge)
        }
        XCTAssertThrowsError(try manager.login(user: "no spaces allowed", current: .none, userAgent: nil))
        XCTAssertThrowsError(try manager.login(user: "-dash-first", current: .none, userAgent: nil))
    }

    func testStoreFailureIsReported() {
        store.failure = .unavailable("down")
        XCTAssertThrowsError(try manager.countVisit(presented: nil)) { error in
            XCTAssertEqual(error as? SessionError, .store(.unavailable("down")))
        }
    }

    func testAliasRetryPolicyIsTheCallersAndTheCoreNeverWaitsByItself() throws {
        let id = try newSession()
        // An alias whose copy never arrives: the manager asks the policy, then gives up.
        let pauses = Counter()
        manager.rotationRetry = RotationRetry(attempts: 3, pause: { _ in pauses.increment() })
        guard case .found = try store.rotate(id, to: SessionID.generate(), leaving: .alias, graceSeconds: 10) else { return XCTFail("not found") }
        XCTAssertEqual(try manager.resolve(id), .none)
        XCTAssertEqual(pauses.value, 3)
    }

    /// A copy that never came (its session ended after the rotation) is waited for once, not
    /// by every request presenting the old id while the alias lives; once the memory lapses it
    /// is waited for again, and a remembered target that does exist is still found.
    func testACopyWaitedForInVainIsNotWaitedForAgain() throws {
        let id = try newSession()
        let pauses = Counter()
        let clock = Counter()
        let memory = MissingCopies(capacity: 4, lifetimeMilliseconds: 2000, now: { Int64(clock.value) })
        manager.rotationRetry = RotationRetry(attempts: 5, pause: { _ in pauses.increment() }, memory: memory)
        let target = SessionID.generate()
        guard case .found = try store.rotate(id, to: target, leaving: .alias, graceSeconds: 10) else { return XCTFail("not found") }
        XCTAssertEqual(try manager.resolve(id), .none)
        XCTAssertEqual(pauses.value, 5)
        for _ in 0..<20 { XCTAssertEqual(try manager.resolve(id), .none) }
        XCTAssertTrue(try manager.countVisit(presented: id).isNewSession)
        XCTAssertEqual(pauses.value, 5, "the wait was repeated for a copy already waited for in vain")
        clock.add(2001)
        XCTAssertEqual(try manager.resolve(id), .none)
        XCTAssertEqual(pauses.value, 10, "the memory lapses")
        // The copy arrives late: the alias leads to it at once, remembered or not.
        XCTAssertEqual(try store.create(target, fields: [(SessionNames.countField, "7")], timeouts: manager.timeouts,
                                        limits: manager.limits), .created(now: store.now))
        XCTAssertEqual(try manager.resolve(id).record?.id, target)
        XCTAssertEqual(pauses.value, 10)
    }

    func testMissingCopiesForgetsTheOldestBeyondItsCapacity() {
        let clock = Counter()
        let memory = MissingCopies(capacity: 3, lifetimeMilliseconds: 1000, now: { Int64(clock.value) })
        let ids = (0..<5).map { _ in SessionID.generate() }
        for id in ids {
            memory.insert(id)
            clock.add(10)
        }
        XCTAssertEqual(ids.map { memory.contains($0) }, [false, false, true, true, true])
        clock.add(1000)
        XCTAssertFalse(memory.contains(ids[4]))
    }
}

/// A counter a `@Sendable` closure can bump (the tests are single-threaded).
final class Counter: @unchecked Sendable {
    // @unchecked: only ever touched from the test's own thread.
    private(set) var value = 0
    func increment() { value += 1 }
    func add(_ amount: Int) { value += amount }
}
