import XCTest
@testable import SessionCore

final class SessionIDTests: XCTestCase {
    func testGeneratedIDsHave192BitsInURLSafeAlphabet() {
        let id = SessionID.generate()
        XCTAssertEqual(id.rawValue.count, 32)
        XCTAssertTrue(id.rawValue.utf8.allSatisfy(Base64.isURLAlphabet))
        XCTAssertEqual(SessionID.byteCount * 8, 192)
    }

    func testGeneratedIDsAreDistinctAndValidateThemselves() {
        var seen = Set<String>()
        for _ in 0..<20_000 {
            let id = SessionID.generate()
            XCTAssertTrue(seen.insert(id.rawValue).inserted)
            XCTAssertEqual(SessionID(validating: id.rawValue), id)
        }
    }

    func testGeneratedIDsUseTheWholeAlphabetEvenly() {
        // 20 000 ids × 32 characters: each of the 64 symbols should appear about 10 000 times.
        var counts = [UInt8: Int]()
        for _ in 0..<20_000 { for byte in SessionID.generate().rawValue.utf8 { counts[byte, default: 0] += 1 } }
        XCTAssertEqual(counts.count, 64)
        for (_, count) in counts { XCTAssertTrue((8_500...11_500).contains(count), "skewed symbol count \(count)") }
    }

    func testValidationRejectsWrongLengthAndAlphabet() {
        let valid = String(repeating: "a", count: 32)
        XCTAssertNotNil(SessionID(validating: valid))
        let invalid = [
            "", "a", String(repeating: "a", count: 31), String(repeating: "a", count: 33),
            String(repeating: "a", count: 31) + "+", String(repeating: "a", count: 31) + "/",
            String(repeating: "a", count: 31) + "=", String(repeating: "a", count: 31) + " ",
            String(repeating: "a", count: 31) + "é", String(repeating: "a", count: 31) + "\u{0}",
            String(repeating: "a", count: 30) + "é", "../../etc/passwd" + String(repeating: "a", count: 16),
            String(repeating: "a", count: 16) + "\r\n" + String(repeating: "a", count: 14),
        ]
        for text in invalid { XCTAssertNil(SessionID(validating: text), "accepted \(text.debugDescription)") }
    }

    func testDescriptionDoesNotRevealTheID() {
        let id = SessionID.generate()
        XCTAssertFalse("\(id)".contains(id.rawValue))
        XCTAssertFalse(String(describing: id).contains(id.rawValue))
    }

    func testBase64URLMatchesRFC4648Vectors() {
        XCTAssertEqual(Base64.encode(Array("f".utf8)), "Zg")
        XCTAssertEqual(Base64.encode(Array("fo".utf8)), "Zm8")
        XCTAssertEqual(Base64.encode(Array("foo".utf8)), "Zm9v")
        XCTAssertEqual(Base64.encode(Array("foobar".utf8)), "Zm9vYmFy")
        XCTAssertEqual(Base64.encode([0xFB, 0xFF, 0xBF]), "-_-_")
        XCTAssertEqual(Base64.encode(Array("f".utf8), .standard), "Zg==")
        XCTAssertEqual(Base64.encode(Array("fo".utf8), .standard), "Zm8=")
        XCTAssertEqual(Base64.encode([0xFB, 0xFF, 0xBF], .standard), "+/+/")
    }

    func testBase64URLDecodesCanonicallyOnly() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            XCTAssertEqual(Base64.decodeURL(Base64.encode(bytes)), bytes)
        }
        XCTAssertEqual(Base64.decodeURL("Zg"), Array("f".utf8))
        XCTAssertNil(Base64.decodeURL("Zh"), "unused bits must be zero")
        XCTAssertNil(Base64.decodeURL("Zm9"), "unused bits must be zero")
        XCTAssertNil(Base64.decodeURL("a"), "a lone character is no byte")
        XCTAssertNil(Base64.decodeURL("ab+/"))
        XCTAssertNil(Base64.decodeURL("Zg=="), "no padding in the url form")
    }
}
