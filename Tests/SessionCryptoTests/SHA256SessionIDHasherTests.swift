import XCTest
import SessionCore
import SessionCrypto

/// Ids at rest: digests that name sessions, pointers only the old id's holder can follow.
final class SHA256SessionIDHasherTests: XCTestCase {
    private let hasher = SHA256SessionIDHasher()
    private let old = SessionID(validating: "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")!
    private let new = SessionID(validating: "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC")!

    /// Digest and pointer made by an independent implementation of the documented format
    /// (Python: SHA-256, base64url; key HMAC-SHA256(old id, "session-fcgi alias pointer v1" ‖
    /// 0x01), data "p1" NUL digest of the old id).
    func testMatchesAnIndependentImplementation() {
        XCTAssertEqual(hasher.digest(of: old), "Ql7U5KNrMOohuQ4hxxLGSeghTCm36vaAidEDnG5VOEw")
        let pointer = "p1:ZGVmZ2hpamtsbW5vtxW0IAVcsriUNw3wO_D84CF210A92GsPHe02RDfqbq_DbuEbvb-cK1jGo7Nihbnt"
        XCTAssertEqual(hasher.openPointer(pointer, from: old), new)
    }

    func testDigestsAreNotIDs() {
        let id = SessionID.generate()
        let digest = hasher.digest(of: id)
        XCTAssertTrue(hasher.isDigest(digest))
        XCTAssertNil(SessionID(validating: digest), "a digest cannot be presented as a cookie")
        XCTAssertFalse(hasher.isDigest(id.rawValue))
        XCTAssertFalse(hasher.isDigest(String(digest.dropLast()) + "*"))
        XCTAssertEqual(hasher.digest(of: id), digest, "stable")
    }

    func testOnlyTheOldIDOpensItsPointer() throws {
        let pointer = try XCTUnwrap(hasher.sealPointer(to: new, from: old))
        XCTAssertFalse(pointer.contains(new.rawValue))
        XCTAssertEqual(hasher.openPointer(pointer, from: old), new)
        XCTAssertNil(hasher.openPointer(pointer, from: SessionID.generate()), "another id cannot follow it")
        XCTAssertNotEqual(hasher.sealPointer(to: new, from: old), pointer, "a fresh nonce each time")
        var bytes = Array(pointer.utf8)
        bytes[bytes.count / 2] = bytes[bytes.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        XCTAssertNil(hasher.openPointer(String(decoding: bytes, as: UTF8.self), from: old), "an altered pointer leads nowhere")
        XCTAssertNil(hasher.openPointer(new.rawValue, from: old), "a plain id is not a pointer")
    }
}
