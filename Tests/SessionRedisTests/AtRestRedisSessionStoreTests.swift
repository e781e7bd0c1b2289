import Foundation
import XCTest
import RedisClient
import SessionCore
import SessionCrypto
@testable import SessionRedis
import TestSupport

/// Encryption at rest and hashed ids on a real redis-server: what Redis, its RDB file and
/// `MONITOR` show, key rotation, tampering, limits and round trips.
final class AtRestRedisSessionStoreTests: XCTestCase {
    nonisolated(unsafe) private static var redis: RedisServerProcess?

    override class func setUp() {
        redis = try? RedisServerProcess()
    }

    override class func tearDown() {
        redis?.stop()
        redis = nil
    }

    private var server: RedisServerProcess {
        get throws { try XCTUnwrap(Self.redis, "redis-server did not start") }
    }

    private func fixture() throws -> AtRestFixture { AtRestFixture(server: try server) }

    // MARK: - What a copy of Redis shows

    /// A little traffic through the session lifecycle, and what it must not leave readable.
    private struct Traffic {
        /// Every session id issued (old ones included: superseded, aliased, ended).
        var ids: [SessionID] = []
        /// User names, attribute values, user agents and CSRF tokens.
        var secrets: [String] = []
        /// Handles, kept in clear by design: what a scan must find, so it is known to work.
        var handles: [String] = []
    }

    private func runTraffic(_ manager: SessionManager<RedisSessionStore>) throws -> Traffic {
        var traffic = Traffic()
        let mark = SessionID.generate().rawValue.filter { $0.isLetter || $0.isNumber }.prefix(10)
        let (ada, bob, cy) = ("ada.\(mark)", "bob.\(mark)", "cy.\(mark)")
        let agent = "Mozilla/5.0 (X11; agent-\(mark))"
        let attributes = ["cart-\(mark)", "ada-\(mark)@example.com", "note about \(mark)", "bob-\(mark)@example.com"]
        traffic.secrets = [ada, bob, cy, agent] + attributes

        // An anonymous browser fills a cart, logs in as ada (its old id becomes a tombstone),
        // sets attributes, is regenerated (an alias) and comes back with the aliased id.
        guard case .counted(let anonymous, _, _) = try manager.countVisit(presented: nil) else {
            XCTFail("no session was started")
            throw SessionStoreError.failed("no session was started")
        }
        try manager.change(anonymous, set: [("cart", attributes[0])])
        let login = try manager.login(user: ada, current: manager.resolve(anonymous), userAgent: agent)
        try manager.change(login.id, set: [("email", attributes[1]), ("note", attributes[2])])
        let regenerated = try manager.regenerate(try XCTUnwrap(manager.resolve(login.id).record))
        guard case .existing(let followed) = try manager.visitPage(presented: login.id) else {
            XCTFail("the old id's alias led nowhere")
            return traffic
        }
        XCTAssertEqual(followed.id, regenerated.id, "the alias leads to the new id")
        XCTAssertEqual(followed.attributes["email"], attributes[1])
        // ada's phone, bob's browser; cy is revoked (a generation key exists for cy).
        let phone = try manager.login(user: ada, current: .none, userAgent: agent + " phone")
        let bobs = try manager.login(user: bob, current: .none, userAgent: nil)
        try manager.change(bobs.id, set: [("email", attributes[3])])
        let cys = try manager.login(user: cy, current: .none, userAgent: nil)
        XCTAssertEqual(try manager.revokeAll(of: cy), 1)
        XCTAssertEqual(try manager.sessions(of: ada).count, 2)
        traffic.ids = [anonymous, login.id, regenerated.id, phone.id, bobs.id, cys.id]
        traffic.secrets += [login, phone, bobs, cys].compactMap(\.csrfToken)
        traffic.handles = [login.handle, phone.handle, bobs.handle]
        return traffic
    }

    /// Every key name and every value under `prefix`, as one text.
    private func redisText(prefix: String) throws -> String {
        let connection = try server.connection()
        guard case .array(let keys) = try connection.send(RedisCommand("KEYS", prefix + "*")) else {
            XCTFail("KEYS did not answer an array")
            throw SessionStoreError.failed("KEYS did not answer an array")
        }
        var text = ""
        for key in keys.compactMap(\.text) {
            text += key + "\n"
            switch try connection.send(RedisCommand("TYPE", key)).text {
            case "hash":
                guard case .array(let items) = try connection.send(RedisCommand("HGETALL", key)) else { continue }
                text += items.compactMap(\.text).joined(separator: "\n") + "\n"
            case "string":
                text += (try connection.send(RedisCommand("GET", key)).text ?? "") + "\n"
            case let other:
                XCTFail("unexpected key type \(other ?? "none") at \(key)")
            }
        }
        return text
    }

    private func found(_ needles: [String], in text: String) -> [String] {
        needles.filter { text.contains($0) }
    }

    /// Each option hides what it says and nothing more: sealing hides values (ids stay in key
    /// names), hashing hides ids (values stay readable). The scan finds what is in clear —
    /// handles always, values or ids where the option is off — so it is known to work.
    func testEachOptionHidesItsPartOfRedis() throws {
        for (sealed, hashed) in [(true, false), (false, true)] {
            let fixture = try fixture()
            let traffic = try runTraffic(fixture.manager(keys: sealed ? [AtRestFixture.key("k1")] : [], hashed: hashed))
            let text = try redisText(prefix: fixture.tag)
            XCTAssertFalse(found(traffic.handles, in: text).isEmpty, "the scan sees clear text")
            if sealed {
                XCTAssertEqual(found(traffic.secrets, in: text), [], "sealed values readable")
                XCTAssertFalse(found(traffic.ids.map(\.rawValue), in: text).isEmpty, "without hashing, ids name the keys")
            } else {
                XCTAssertEqual(found(traffic.ids.map(\.rawValue), in: text), [], "an id readable with hashing on")
                XCTAssertFalse(found(traffic.secrets, in: text).isEmpty, "without sealing, values are plain")
            }
        }
    }

    /// With both on, neither Redis (every key and value), nor its RDB file after `SAVE`, nor
    /// `MONITOR` during the traffic shows a user name, an attribute value, a user agent, a CSRF
    /// token or any session id ever issued.
    func testWithBothOnNoCopyOfRedisShowsAValueAUserOrAnID() throws {
        let fixture = try fixture()
        let monitorLog = fixture.server.directory.appendingPathComponent("monitor-\(fixture.tag).log")
        let monitor = try ManagedProcess(name: "redis-cli monitor", executable: Paths.tool("redis-cli"),
                                         arguments: ["-p", String(fixture.server.port), "monitor"], logFile: monitorLog)
        Thread.sleep(forTimeInterval: 0.3)
        let traffic = try runTraffic(fixture.manager(keys: [AtRestFixture.key("k1")], hashed: true))
        let clear = traffic.secrets + traffic.ids.map(\.rawValue)
        XCTAssertEqual(traffic.ids.count, 6)

        let text = try redisText(prefix: fixture.tag)
        XCTAssertFalse(found(traffic.handles, in: text).isEmpty, "the scan sees clear text")
        XCTAssertEqual(found(clear, in: text), [], "readable in Redis")

        let connection = try server.connection()
        _ = try connection.send(RedisCommand("CONFIG", "SET", "rdbcompression", "no"))
        XCTAssertEqual(try connection.send(RedisCommand("SAVE")).text, "OK")
        let rdb = String(decoding: try Data(contentsOf: fixture.server.directory.appendingPathComponent("dump.rdb")), as: UTF8.self)
        XCTAssertFalse(found(traffic.handles, in: rdb).isEmpty, "the RDB file is searchable")
        XCTAssertEqual(found(clear, in: rdb), [], "readable in the RDB file")

        Thread.sleep(forTimeInterval: 0.3)
        monitor.stop()
        let monitored = try String(contentsOf: monitorLog, encoding: .utf8)
        XCTAssertFalse(found(traffic.handles, in: monitored).isEmpty, "MONITOR was recorded")
        XCTAssertEqual(found(clear, in: monitored), [], "readable in MONITOR")
    }

    // MARK: - Key rotation

    /// Write with key A; restart with "B then A": everything reads, a rewrite moves a value to
    /// B and a rotation moves the whole session; remove A: the rewritten session still reads.
    func testKeyRotationKeepsEverySessionReadable() throws {
        let fixture = try fixture()
        let (keyA, keyB) = (AtRestFixture.key("A"), AtRestFixture.key("B"))
        let inspector = try server.connection()
        func sealedKeyIDs(_ store: RedisSessionStore, _ id: SessionID) throws -> [String: String] {
            guard case .array(let items) = try inspector.send(RedisCommand("HGETALL", store.key(for: id))) else { return [:] }
            var ids: [String: String] = [:]
            for pair in stride(from: 0, to: items.count - 1, by: 2) {
                if let name = items[pair].text, let value = items[pair + 1].text.flatMap(SealedValue.init(parsing:)) { ids[name] = value.keyID }
            }
            return ids
        }

        let underA = fixture.manager(keys: [keyA], hashed: true)
        let login = try underA.login(user: "ada", current: .none, userAgent: "agent")
        try underA.change(login.id, set: [("theme", "dark"), ("lang", "en")])
        let csrf = try XCTUnwrap(login.csrfToken)
        XCTAssertEqual(Set(try sealedKeyIDs(underA.store, login.id).values), ["A"])

        let rotating = fixture.manager(keys: [keyB, keyA], hashed: true)
        let read = try XCTUnwrap(rotating.resolve(login.id).record)
        XCTAssertEqual(read.user, "ada")
        XCTAssertEqual(read.attributes, ["theme": "dark", "lang": "en"])
        XCTAssertEqual(read.csrfToken, csrf)
        XCTAssertEqual(try rotating.sessions(of: "ada").map(\.handle), [login.handle], "the index under A's name is found")
        try rotating.change(login.id, set: [("theme", "light")])
        let rewritten = try sealedKeyIDs(rotating.store, login.id)
        XCTAssertEqual(rewritten["theme"], "B", "a rewrite seals under the first key")
        XCTAssertEqual(rewritten["lang"], "A", "what was not rewritten stays under A")
        let rotated = try rotating.regenerate(read)
        XCTAssertEqual(Set(try sealedKeyIDs(rotating.store, rotated.id).values), ["B"], "a rotation rewrites every value")

        let afterA = fixture.manager(keys: [keyB], hashed: true)
        let final = try XCTUnwrap(afterA.resolve(rotated.id).record)
        XCTAssertEqual(final.user, "ada")
        XCTAssertEqual(final.attributes, ["theme": "light", "lang": "en"])
        XCTAssertEqual(final.csrfToken, csrf)
        XCTAssertEqual(final.userAgent, "agent")
        XCTAssertEqual(try afterA.sessions(of: "ada").map(\.handle), [login.handle], "listed under B's name")
        XCTAssertEqual(try afterA.resolve(login.id).record?.id, rotated.id, "the alias does not depend on the keys")
    }

    /// Why a retired key stays in the file for the absolute timeout: a session written under it
    /// and never rewritten loses its sealed values (absent, never wrong) once the key is gone.
    /// And a revoke-all during a rotation ends sessions indexed under every key's name.
    func testRetiredKeysAndRevocationAcrossTheRing() throws {
        let fixture = try fixture()
        let (keyA, keyB) = (AtRestFixture.key("A"), AtRestFixture.key("B"))
        let underA = fixture.manager(keys: [keyA])
        let old = try underA.login(user: "ada", current: .none, userAgent: nil)
        try underA.change(old.id, set: [("theme", "dark")])
        let stale = try XCTUnwrap(fixture.manager(keys: [keyB]).resolve(old.id).record)
        XCTAssertNil(stale.user, "sealed under a key no longer in the ring: absent")
        XCTAssertEqual(stale.attributes, [:])
        XCTAssertNil(try fixture.manager().resolve(old.id).record?.user, "read without keys, a sealed user name is nobody")

        let rotating = fixture.manager(keys: [keyB, keyA])
        let new = try rotating.login(user: "ada", current: .none, userAgent: nil)
        XCTAssertEqual(Set(try rotating.sessions(of: "ada").map(\.handle)), [old.handle, new.handle], "both names are read")
        XCTAssertEqual(try rotating.revokeAll(of: "ada"), 2, "both names are revoked")
        XCTAssertNil(try rotating.resolve(old.id).record)
        XCTAssertNil(try rotating.resolve(new.id).record)
        XCTAssertEqual(try underA.store.userGeneration("ada"), 1,
                       "the generation under A's name moved on too, so a login racing on an instance that still writes under A is refused")
    }

    // MARK: - Tampering

    /// Flipped bytes, values moved between fields or sessions, an unknown key id, a whole
    /// record moved, an altered alias: never another value — absent, or an error.
    func testTamperingNeverYieldsAnotherValue() throws {
        let fixture = try fixture()
        let manager = fixture.manager(keys: [AtRestFixture.key("k1")], hashed: true)
        let store = manager.store
        let redis = try server.connection()
        let ada = try manager.login(user: "ada", current: .none, userAgent: nil)
        try manager.change(ada.id, set: [("a", "alpha"), ("b", "beta"), ("c", "gamma")])
        let bob = try manager.login(user: "bob", current: .none, userAgent: nil)
        try manager.change(bob.id, set: [("a", "delta")])
        func raw(_ id: SessionID, _ field: String) throws -> String { try XCTUnwrap(redis.send(RedisCommand("HGET", store.key(for: id), field)).text) }
        func plant(_ id: SessionID, _ field: String, _ value: String) throws {
            _ = try redis.send(RedisCommand("HSET", store.key(for: id), field, value))
        }
        func record(_ id: SessionID) throws -> SessionRecord { try XCTUnwrap(manager.resolve(id, touch: false).record) }
        let (adaA, adaUser) = (try raw(ada.id, "a"), try raw(ada.id, ReservedField.user))

        var flipped = Array(try raw(ada.id, "c").utf8)
        flipped[flipped.count - 5] = flipped[flipped.count - 5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        try plant(ada.id, "c", String(decoding: flipped, as: UTF8.self))
        try plant(ada.id, "b", adaA)
        try plant(bob.id, "a", adaA)
        try plant(bob.id, ReservedField.user, adaUser)
        let adaNow = try record(ada.id)
        XCTAssertEqual(adaNow.attributes, ["a": "alpha"], "a flipped byte and a value moved between fields are absent")
        let bobNow = try record(bob.id)
        XCTAssertNil(bobNow.user, "ada's user name moved into bob's session does not make it ada's")
        XCTAssertEqual(bobNow.attributes, [:], "ada's value moved into bob's session is absent")

        try plant(ada.id, "a", adaA.replacingOccurrences(of: "enc1:k1:", with: "enc1:k9:"))
        XCTAssertEqual(try record(ada.id).attributes, [:], "an unknown key id is absent")

        let carol = try manager.login(user: "carol", current: .none, userAgent: nil)
        try manager.change(carol.id, set: [("a", "epsilon")])
        _ = try redis.send(RedisCommand("RENAME", store.key(for: carol.id), store.key(for: bob.id)))
        let moved = try record(bob.id)
        XCTAssertNil(moved.user, "a whole record moved to another session's key opens nothing")
        XCTAssertEqual(moved.attributes, [:])

        let rotated = try manager.regenerate(try record(ada.id))
        var pointer = Array(try raw(ada.id, ReservedField.alias).utf8)
        pointer[pointer.count / 2] = pointer[pointer.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        try plant(ada.id, ReservedField.alias, String(decoding: pointer, as: UTF8.self))
        XCTAssertThrowsError(try manager.resolve(ada.id), "an altered alias is an error, never followed elsewhere")
        XCTAssertNotNil(try manager.resolve(rotated.id).record)
    }

    // MARK: - Limits and round trips

    /// Limits count plaintext bytes with sealing exactly as without: the scripts recover each
    /// value's length from its sealed form, at every length (base64 rounds in threes). A plain
    /// value that only looks sealed counts in full.
    func testLimitsCountPlaintextBytesWithAndWithoutSealing() throws {
        let fixture = try fixture()
        let timeouts = SessionTimeouts(idleSeconds: 60, absoluteSeconds: 3600)
        for store in [fixture.store(keys: [AtRestFixture.key("k1")], hashed: true), fixture.store()] {
            for length in 0..<7 {
                let limits = SessionLimits(maxAttributes: 4, maxBytes: 1 + 30 + length)
                let fits = String(repeating: "é", count: 15) + String(repeating: "x", count: length)
                XCTAssertEqual(try store.create(SessionID.generate(), fields: [("a", fits + "y")], timeouts: timeouts, limits: limits), .tooLarge)
                let id = SessionID.generate()
                XCTAssertEqual(try store.create(id, fields: [("a", fits)], timeouts: timeouts, limits: limits).isCreated, true)
                XCTAssertEqual(try store.update(id, set: [("a", fits + "y")], remove: [], timeouts: timeouts, limits: limits), .found(.tooLarge))
                XCTAssertEqual(try store.update(id, set: [("a", "")], remove: [], timeouts: timeouts, limits: limits), .found(.applied))
                XCTAssertEqual(try store.update(id, set: [("b", String(fits.dropFirst()))], remove: [], timeouts: timeouts, limits: limits),
                               .found(.applied), "the emptied value counts 0 bytes")
            }
        }
        let lookalike = "enc1:k1:" + String(repeating: "A", count: 44)
        let plain = fixture.store()
        let limits = SessionLimits(maxAttributes: 4, maxBytes: lookalike.utf8.count)
        XCTAssertEqual(try plain.create(SessionID.generate(), fields: [("a", lookalike)], timeouts: timeouts, limits: limits), .tooLarge,
                       "a client's text that looks sealed is counted in full")
    }

    /// Sealing, opening and hashing happen in the store, around the same scripts: still one
    /// EVALSHA per operation.
    func testProtectionAddsNoRoundTrip() throws {
        let fixture = try fixture()
        let store = fixture.store(keys: [AtRestFixture.key("k1")], hashed: true)
        let timeouts = SessionTimeouts(idleSeconds: 60, absoluteSeconds: 3600)
        let id = SessionID.generate()
        _ = try store.create(id, fields: [("count", "1"), ("a", "1"), (ReservedField.user, "ada")], timeouts: timeouts, limits: SessionLimits())
        _ = try store.load(id, timeouts: timeouts, touch: true, incrementing: "count")
        _ = try store.update(id, set: [("b", "2")], remove: [], timeouts: timeouts, limits: SessionLimits())
        _ = try store.increment("count", by: 1, in: id, timeouts: timeouts)
        try server.resetStatistics()
        for _ in 0..<5 { _ = try store.load(id, timeouts: timeouts, touch: true, incrementing: "count") }
        for _ in 0..<5 { _ = try store.update(id, set: [("b", "3")], remove: [], timeouts: timeouts, limits: SessionLimits()) }
        for _ in 0..<5 { _ = try store.increment("count", by: 1, in: id, timeouts: timeouts) }
        let calls = try server.commandCalls()
        XCTAssertEqual(calls["evalsha"], 15)
        XCTAssertNil(calls["eval"])
    }
}
