import XCTest
import SessionCore

/// The sealed-value text layout (no cryptography) and the key file's base64.
final class SealedValueTests: XCTestCase {
    func testParsesOnlyTheDocumentedLayout() {
        let payload = [UInt8](0..<40)
        let value = SealedValue(keyID: "k-2_b", payload: payload)
        XCTAssertEqual(value.encoded, "enc1:k-2_b:" + Base64.encode(payload))
        XCTAssertEqual(SealedValue(parsing: value.encoded), value)
        let refused = [
            "k1:" + Base64.encode(payload), "enc2:k1:" + Base64.encode(payload), "enc1::" + Base64.encode(payload),
            "enc1:k.1:" + Base64.encode(payload), "enc1:" + String(repeating: "k", count: 17) + ":" + Base64.encode(payload),
            "enc1:k1:" + Base64.encode(payload) + "=", "enc1:k1:" + Base64.encode([UInt8](0..<27)), "enc1:k1",
        ]
        for text in refused { XCTAssertNil(SealedValue(parsing: text), text) }
        XCTAssertNotNil(SealedValue(parsing: "enc1:k1:" + Base64.encode([UInt8](0..<28))), "an empty plaintext")
    }

    func testStandardBase64IsDecodedCanonically() {
        XCTAssertEqual(Base64.decodeStandard(""), [])
        XCTAssertEqual(Base64.decodeStandard("Zg=="), Array("f".utf8))
        XCTAssertEqual(Base64.decodeStandard("Zm8="), Array("fo".utf8))
        XCTAssertEqual(Base64.decodeStandard("Zm9v"), Array("foo".utf8))
        XCTAssertEqual(Base64.decodeStandard("+/+/"), [0xFB, 0xFF, 0xBF])
        for text in ["Zg", "Zg=", "Zh==", "-_-_", "Z===", "Zg==Zg==", "Zm 9v", "=Zm9"] {
            XCTAssertNil(Base64.decodeStandard(text), text)
        }
    }
}
