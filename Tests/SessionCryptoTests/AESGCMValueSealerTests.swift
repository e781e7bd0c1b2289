import XCTest
import SessionCore
@testable import SessionCrypto

/// The sealed-value format and its guarantees: bound to field and session, fresh nonce per
/// value, any change refused, keys that rotate.
final class AESGCMValueSealerTests: XCTestCase {
    private static func key(_ id: String, _ seed: UInt8) -> SealingKey {
        SealingKey(id: id, bytes: (0..<32).map { UInt8($0) &+ seed })!
    }

    private let keyA = key("k1", 0)
    private let keyB = key("k2", 100)
    private let session = SessionReference(rawValue: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    private let other = SessionReference(rawValue: SessionID.generate().rawValue)

    private func ring(_ keys: SealingKey...) throws -> AESGCMValueSealer {
        try XCTUnwrap(AESGCMValueSealer(keys: keys))
    }

    /// Made by an independent implementation of the documented format (Python's
    /// `cryptography`: subkey S = HMAC-SHA256(key, "session-fcgi value sealing v1" ‖ 0x01),
    /// session key HMAC-SHA256(S, "session" NUL reference ‖ 0x01), data "enc1" NUL reference NUL
    /// field, nonce 0x64…0x6f), so the layout is the documented one.
    func testOpensAValueSealedByAnIndependentImplementation() throws {
        let sealed = "enc1:k1:ZGVmZ2hpamtsbW5vZVf-pSXww5iVmdWWw2_DOpRhNibYKxBT"
        XCTAssertEqual(try ring(keyA).open(sealed, field: "theme", session: session), "dark ☾")
        XCTAssertEqual(try ring(keyA).pseudonyms(ofUser: "ada"), ["wj_qCvlOw8sy8n0PtFgOsJU6R7DfJgs98LSocmMmBUk"])
    }

    func testRoundTripAndTheLengthTheScriptsCountBy() throws {
        let sealer = try ring(keyA)
        for length in 0...70 {
            for plaintext in [String(repeating: "x", count: length), String(repeating: "é", count: length)] {
                let sealed = try XCTUnwrap(sealer.seal(plaintext, field: "a", session: session))
                XCTAssertTrue(sealed.hasPrefix("enc1:k1:"))
                XCTAssertEqual(sealer.open(sealed, field: "a", session: session), plaintext)
                // The Redis scripts count limits by this: base64url chars × 3 / 4 − nonce − tag.
                let encoded = sealed.utf8.count - "enc1:k1:".utf8.count
                XCTAssertEqual(encoded * 3 / 4 - SealedValue.overheadByteCount, plaintext.utf8.count, "length \(length)")
            }
        }
    }

    func testASessionsValuesAreSealedAndOpenedTogether() throws {
        let sealer = try ring(keyB, keyA)
        let underA = try XCTUnwrap(try ring(keyA).seal("old", field: "b", session: session))
        let sealed = try XCTUnwrap(sealer.seal([("a", "1"), (ReservedField.user, "ada")], session: session))
        XCTAssertEqual(sealed.count, 2)
        let opened = sealer.open([("a", sealed[0]), (ReservedField.user, sealed[1]), ("b", underA), ("c", "plain"), ("a", sealed[1])],
                                 session: session)
        XCTAssertEqual(opened, ["1", "ada", "old", nil, nil], "in order, each under its own key, the rest absent")
        XCTAssertEqual(sealer.seal([], session: session), [])
    }

    func testEveryValueHasAFreshNonce() throws {
        let sealer = try ring(keyA)
        let sealed = (0..<200).compactMap { _ in sealer.seal("same", field: "a", session: session) }
        XCTAssertEqual(Set(sealed).count, 200)
        XCTAssertEqual(Set(sealed.compactMap { SealedValue(parsing: $0)?.payload.prefix(12) }).count, 200)
    }

    func testAValueOpensOnlyInItsFieldAndSession() throws {
        let sealer = try ring(keyA)
        let sealed = try XCTUnwrap(sealer.seal("ada", field: ReservedField.user, session: session))
        XCTAssertEqual(sealer.open(sealed, field: ReservedField.user, session: session), "ada")
        XCTAssertNil(sealer.open(sealed, field: "theme", session: session), "moved to another field")
        XCTAssertNil(sealer.open(sealed, field: ReservedField.user, session: other), "moved to another session")
    }

    func testAnyChangeToASealedValueIsRefused() throws {
        let sealer = try ring(keyA)
        let sealed = try XCTUnwrap(sealer.seal("secret value", field: "a", session: session))
        let parsed = try XCTUnwrap(SealedValue(parsing: sealed))
        for position in parsed.payload.indices {
            for bit in [0, 7] {
                var payload = parsed.payload
                payload[position] ^= 1 << bit
                XCTAssertNil(sealer.open(SealedValue(keyID: "k1", payload: payload).encoded, field: "a", session: session),
                             "byte \(position) bit \(bit)")
            }
        }
        XCTAssertNil(sealer.open(SealedValue(keyID: "k1", payload: parsed.payload.dropLast()).encoded, field: "a", session: session))
        XCTAssertNil(sealer.open(SealedValue(keyID: "k1", payload: parsed.payload + [0]).encoded, field: "a", session: session))
        XCTAssertNil(sealer.open(sealed.replacingOccurrences(of: "enc1:k1:", with: "enc1:k9:"), field: "a", session: session), "unknown key id")
        XCTAssertNil(sealer.open(sealed.replacingOccurrences(of: "enc1:", with: "enc2:"), field: "a", session: session))
        XCTAssertNil(sealer.open("secret value", field: "a", session: session), "a plain value is not trusted")
    }

    func testKeysRotateWithoutLosingValues() throws {
        let old = try ring(keyA)
        let rotated = try ring(keyB, keyA)
        let sealedUnderA = try XCTUnwrap(old.seal("v", field: "a", session: session))
        XCTAssertEqual(rotated.open(sealedUnderA, field: "a", session: session), "v", "old keys still open")
        let sealedUnderB = try XCTUnwrap(rotated.seal("v", field: "a", session: session))
        XCTAssertEqual(SealedValue(parsing: sealedUnderB)?.keyID, "k2", "the first key seals")
        XCTAssertEqual(try ring(keyB).open(sealedUnderB, field: "a", session: session), "v")
        XCTAssertNil(try ring(keyB).open(sealedUnderA, field: "a", session: session), "a retired key's values no longer open")
        XCTAssertNil(try ring(Self.key("k1", 7)).open(sealedUnderA, field: "a", session: session), "a key id is not a key")
        XCTAssertEqual(rotated.keyIDs, ["k2", "k1"])
        XCTAssertEqual(try ring(keyA).pseudonyms(ofUser: "ada")?.first, rotated.pseudonyms(ofUser: "ada")?.last,
                       "a key's pseudonym does not change with its place in the ring")
    }

    func testPseudonymsAreKeyedAndDistinct() throws {
        let names = try XCTUnwrap(try ring(keyB, keyA).pseudonyms(ofUser: "ada"))
        XCTAssertEqual(names.count, 2)
        XCTAssertNotEqual(names[0], names[1])
        XCTAssertNotEqual(try ring(keyA).pseudonyms(ofUser: "bob"), try ring(keyA).pseudonyms(ofUser: "ada"))
        XCTAssertFalse(names.contains { $0.contains("ada") })
        XCTAssertEqual(names[0].utf8.count, 43)
    }

    func testRingsAndKeysAreChecked() {
        XCTAssertNil(AESGCMValueSealer(keys: []))
        XCTAssertNil(AESGCMValueSealer(keys: [keyA, Self.key("k1", 50)]), "a key id twice")
        XCTAssertNil(SealingKey(id: "k1", bytes: [UInt8](repeating: 1, count: 31)))
        XCTAssertNil(SealingKey(id: "k:1", bytes: [UInt8](repeating: 1, count: 32)))
        XCTAssertEqual(keyA.description, "SealingKey(k1, redacted)", "a key never shows in a log line")
    }
}
