import XCTest
import SessionCore

/// The behaviour every `SessionStore` must have, run against each implementation.
enum SessionStoreContract {
    static func createThenIncrement(_ store: some SessionStore) throws {
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "1")], idleTimeoutSeconds: 60))
        XCTAssertEqual(try store.increment("count", by: 1, in: id, idleTimeoutSeconds: 60), 2)
        XCTAssertEqual(try store.increment("count", by: 5, in: id, idleTimeoutSeconds: 60), 7)
    }

    static func incrementOfUnknownSessionWritesNothing(_ store: some SessionStore, exists: (SessionID) throws -> Bool) throws {
        let id = SessionID.generate()
        XCTAssertNil(try store.increment("count", by: 1, in: id, idleTimeoutSeconds: 60))
        XCTAssertFalse(try exists(id), "an unknown id became a session")
    }

    static func createRefusesAnExistingID(_ store: some SessionStore) throws {
        let id = SessionID.generate()
        XCTAssertTrue(try store.create(id, fields: [("count", "5")], idleTimeoutSeconds: 60))
        XCTAssertFalse(try store.create(id, fields: [("count", "1")], idleTimeoutSeconds: 60))
        XCTAssertEqual(try store.increment("count", by: 1, in: id, idleTimeoutSeconds: 60), 6, "the second create overwrote data")
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
    func testHealth() throws { try SessionStoreContract.healthyStorePassesTheHealthCheck(InMemorySessionStore()) }
}
