import Foundation
import XCTest
import RedisClient
import SessionCore
import SessionCrypto
@testable import SessionRedis
import TestSupport

/// Stores with encryption at rest, hashed ids, or both, on a test's redis-server, each with key
/// prefixes of its own.
struct AtRestFixture {
    let server: RedisServerProcess
    let tag = "t\(UUID().uuidString.prefix(8))"

    /// A fresh random 32-byte key.
    static func key(_ id: String) -> SealingKey {
        var generator = SystemRandomNumberGenerator()
        return SealingKey(id: id, bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })!
    }

    /// A store over this fixture's prefixes (so stores with other rings see the same keys).
    func store(keys: [SealingKey] = [], hashed: Bool = false) -> RedisSessionStore {
        let layout = RedisSessionLayout(keyPrefix: "\(tag):sid_", userKeyPrefix: "\(tag):u_",
                                        sealer: keys.isEmpty ? nil : AESGCMValueSealer(keys: keys),
                                        idHasher: hashed ? SHA256SessionIDHasher() : nil)
        return RedisSessionStore(client: server.client(), layout: layout)
    }

    /// A session manager as the server runs it (the Redis wait for rotated copies).
    func manager(keys: [SealingKey] = [], hashed: Bool = false, limits: SessionLimits = SessionLimits()) -> SessionManager<RedisSessionStore> {
        SessionManager(store: store(keys: keys, hashed: hashed), limits: limits, rotationRetry: .redis)
    }

    /// The contract suite on a store of this layout; `exists` looks at the key the layout names.
    static func contract(_ server: RedisServerProcess?, sealed: Bool, hashed: Bool) throws -> SessionStoreContract<RedisSessionStore> {
        let fixture = AtRestFixture(server: try XCTUnwrap(server, "redis-server did not start"))
        let store = fixture.store(keys: sealed ? [key("k1")] : [], hashed: hashed)
        let inspector = fixture.server.connection()
        return SessionStoreContract(store: store) { try inspector.send(RedisCommand("EXISTS", store.key(for: $0))).integer == 1 }
    }
}
