import XCTest
import SessionCore

/// The behaviour every `SessionStore` must have, run against each implementation.
enum SessionStoreContract {
    static let timeouts = SessionTimeouts(idleSeconds: 60, absoluteSeconds: 3600)

    static func value(_ lookup: StoreLookup<Counted>) -> Int64? {
        if case .found(let counted) = lookup { return counted.value }
        return nil
    }

    static func createThenIncrement(_ store: some SessionStore) throws {
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], timeouts: timeouts))
        XCTAssertEqual(value(try store.increment("count", by: 1, in: id, timeouts: timeouts)), 2)
        XCTAssertEqual(value(try store.increment("count", by: 5, in: id, timeouts: timeouts)), 7)
    }

    static func incrementOfUnknownSessionWritesNothing(_ store: some SessionStore, exists: (SessionID) throws -> Bool) throws {
        let id = SessionID.generate()
        XCTAssertEqual(try store.increment("count", by: 1, in: id, timeouts: timeouts), .missing)
        XCTAssertEqual(try store.update(id, set: [("a", "1")], remove: [], timeouts: timeouts, limits: SessionLimits()), .missing)
        XCTAssertFalse(try exists(id), "an unknown id became a session")
    }

    static func createRefusesAnExistingID(_ store: some SessionStore) throws {
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "5")], timeouts: timeouts))
        XCTAssertFalse(try store.create(id, fields: [("count", "1")], timeouts: timeouts))
        XCTAssertEqual(value(try store.increment("count", by: 1, in: id, timeouts: timeouts)), 6, "the second create overwrote data")
    }

    static func loadReturnsFieldsWithTimes(_ store: some SessionStore) throws {
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("theme", "dark"), (ReservedField.user, "ada")], timeouts: timeouts))
        guard case .found(let record) = try store.load(id, timeouts: timeouts, touch: true) else { return XCTFail("not found") }
        XCTAssertEqual(record.attributes, ["theme": "dark"])
        XCTAssertEqual(record.owner?.userID, "ada")
        XCTAssertGreaterThan(record.createdAt, 0)
        XCTAssertEqual(record.absoluteExpiresAt, record.createdAt + 3600)
        XCTAssertGreaterThanOrEqual(record.lastSeenAt, record.createdAt)
    }

    static func updateIsADeltaWithinLimits(_ store: some SessionStore) throws {
        let id = SessionID.generate()
        let limits = SessionLimits(maxAttributes: 3, maxBytes: 40)
        XCTAssertTrue(try store.create(id, fields: [], timeouts: timeouts))
        XCTAssertEqual(try store.update(id, set: [("a", "1"), ("b", "2")], remove: [], timeouts: timeouts, limits: limits), .found(.applied))
        XCTAssertEqual(try store.update(id, set: [("c", "3")], remove: ["a"], timeouts: timeouts, limits: limits), .found(.applied))
        XCTAssertEqual(try store.update(id, set: [("d", "4"), ("e", "5")], remove: [], timeouts: timeouts, limits: limits), .found(.tooLarge))
        XCTAssertEqual(try store.update(id, set: [("b", String(repeating: "x", count: 60))], remove: [], timeouts: timeouts, limits: limits), .found(.tooLarge))
        guard case .found(let record) = try store.load(id, timeouts: timeouts, touch: false) else { return XCTFail("not found") }
        XCTAssertEqual(record.attributes, ["b": "2", "c": "3"], "a refused change must write nothing")
    }

    static func writesAfterDestroyDoNotResurrect(_ store: some SessionStore, exists: (SessionID) throws -> Bool) throws {
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], timeouts: timeouts))
        XCTAssertTrue(try store.destroy(id))
        XCTAssertEqual(try store.update(id, set: [("a", "1")], remove: [], timeouts: timeouts, limits: SessionLimits()), .missing)
        XCTAssertEqual(try store.increment("count", by: 1, in: id, timeouts: timeouts), .missing)
        XCTAssertFalse(try exists(id))
        XCTAssertFalse(try store.destroy(id))
    }

    static func rotationLeavesAnAliasForTheGracePeriod(_ store: some SessionStore) throws {
        let old = SessionID.generate(), new = SessionID.generate()
        XCTAssertTrue(try store.create(old, fields: [("count", "3"), ("theme", "dark")], timeouts: timeouts))
        guard case .found(let fields) = try store.beginRotation(of: old, to: new, graceSeconds: 10) else { return XCTFail("not found") }
        XCTAssertEqual(fields["theme"], "dark")
        XCTAssertEqual(fields["count"], "3")
        XCTAssertEqual(try store.increment("count", by: 1, in: old, timeouts: timeouts), .moved(new))
        XCTAssertEqual(try store.load(old, timeouts: timeouts, touch: true), .moved(new))
        XCTAssertEqual(try store.update(old, set: [("x", "1")], remove: [], timeouts: timeouts, limits: SessionLimits()), .moved(new))
        let other = SessionID.generate()
        XCTAssertEqual(try store.beginRotation(of: old, to: other, graceSeconds: 10), .moved(new), "an alias cannot be rotated again")
    }

    static func rotationWithoutGraceEndsTheOldID(_ store: some SessionStore) throws {
        let old = SessionID.generate(), new = SessionID.generate()
        XCTAssertTrue(try store.create(old, fields: [("count", "1")], timeouts: timeouts))
        guard case .found = try store.beginRotation(of: old, to: new, graceSeconds: 0) else { return XCTFail("not found") }
        XCTAssertEqual(try store.load(old, timeouts: timeouts, touch: false), .missing)
    }

    static func usersIndexAndGenerations(_ store: some SessionStore) throws {
        let user = "user-\(SessionID.generate().rawValue.prefix(8))"
        XCTAssertEqual(try store.userGeneration(user), 0)
        XCTAssertEqual(try store.revokeAllSessions(of: user), 1)
        XCTAssertEqual(try store.userGeneration(user), 1)
        let a = SessionID.generate(), b = SessionID.generate()
        XCTAssertTrue(try store.create(a, fields: [], timeouts: timeouts))
        XCTAssertTrue(try store.create(b, fields: [], timeouts: timeouts))
        try store.index(a, handle: "ha", user: user)
        try store.index(b, handle: "hb", user: user)
        XCTAssertEqual(try store.indexedSessions(of: user).map(\.handle), ["ha", "hb"])
        XCTAssertTrue(try store.destroy(b))
        XCTAssertEqual(try store.indexedSessions(of: user).map(\.handle), ["ha"], "entries of ended sessions are pruned")
        try store.unindex(handle: "ha", user: user)
        XCTAssertEqual(try store.indexedSessions(of: user).count, 0)
    }

    static func healthyStorePassesTheHealthCheck(_ store: some SessionStore) throws {
        XCTAssertNoThrow(try store.checkHealth())
    }
}

final class InMemorySessionStoreContractTests: XCTestCase {
    func testCreateThenIncrement() throws { try SessionStoreContract.createThenIncrement(InMemorySessionStore()) }
    func testIncrementOfUnknownSessionWritesNothing() throws {
        let store = InMemorySessionStore()
        try SessionStoreContract.incrementOfUnknownSessionWritesNothing(store) { store.liveSessionIDs.contains($0) }
    }
    func testCreateRefusesAnExistingID() throws { try SessionStoreContract.createRefusesAnExistingID(InMemorySessionStore()) }
    func testLoad() throws { try SessionStoreContract.loadReturnsFieldsWithTimes(InMemorySessionStore()) }
    func testUpdate() throws { try SessionStoreContract.updateIsADeltaWithinLimits(InMemorySessionStore()) }
    func testNoResurrection() throws {
        let store = InMemorySessionStore()
        try SessionStoreContract.writesAfterDestroyDoNotResurrect(store) { store.liveSessionIDs.contains($0) }
    }
    func testRotation() throws { try SessionStoreContract.rotationLeavesAnAliasForTheGracePeriod(InMemorySessionStore()) }
    func testRotationWithoutGrace() throws { try SessionStoreContract.rotationWithoutGraceEndsTheOldID(InMemorySessionStore()) }
    func testUsers() throws { try SessionStoreContract.usersIndexAndGenerations(InMemorySessionStore()) }
    func testHealth() throws { try SessionStoreContract.healthyStorePassesTheHealthCheck(InMemorySessionStore()) }
}
