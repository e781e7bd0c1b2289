import XCTest
@testable import SessionCrypto

/// The AES-256-GCM primitive against the GCM specification's test vectors (McGrew and Viega,
/// "The Galois/Counter Mode of Operation", test cases 13 and 16; also checked with Python's
/// `cryptography`), so the EVP calls, tag handling and authenticated data are right.
final class AESGCMTests: XCTestCase {
    private func bytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return result
    }

    func testSpecificationTestCase16WithAuthenticatedData() throws {
        let key = bytes("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
        let nonce = bytes("cafebabefacedbaddecaf888")
        let aad = bytes("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let plaintext = bytes("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        let expected = nonce
            + bytes("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662")
            + bytes("76fc6ece0f4e1768cddf8853bb2d551b")
        XCTAssertEqual(AESGCM.seal(plaintext, key: key, nonce: nonce, aad: aad), expected)
        XCTAssertEqual(AESGCM.open(expected, key: key, aad: aad), plaintext)
        XCTAssertNil(AESGCM.open(expected, key: key, aad: Array(aad.dropLast())), "other authenticated data")
    }

    func testSpecificationTestCase13EmptyPlaintext() {
        let sealed = AESGCM.seal([], key: [UInt8](repeating: 0, count: 32), nonce: [UInt8](repeating: 0, count: 12), aad: [])
        XCTAssertEqual(sealed, [UInt8](repeating: 0, count: 12) + bytes("530f8afbc74536b9a963b4f1c4cb738b"))
        XCTAssertEqual(sealed.flatMap { AESGCM.open($0, key: [UInt8](repeating: 0, count: 32), aad: []) }, [])
    }

    func testWrongSizesAreRefusedNotPadded() {
        XCTAssertNil(AESGCM.seal([1], key: [UInt8](repeating: 1, count: 16), nonce: [UInt8](repeating: 0, count: 12), aad: []))
        XCTAssertNil(AESGCM.seal([1], key: [UInt8](repeating: 1, count: 32), nonce: [UInt8](repeating: 0, count: 8), aad: []))
        XCTAssertNil(AESGCM.open([UInt8](repeating: 0, count: 27), key: [UInt8](repeating: 1, count: 32), aad: []))
    }
}
