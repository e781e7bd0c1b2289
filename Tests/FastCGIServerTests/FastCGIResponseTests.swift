@testable import FastCGIServer
import XCTest

final class FastCGIResponseTests: XCTestCase {
    /// The token masks say what RFC 9110 says: visible ASCII but the separators.
    func testTokenMasksMatchTheSeparatorList() {
        let separators = Set("()<>@,;:\\\"/[]?={}".utf8)
        for byte in 0...255 {
            let expected = byte > 32 && byte < 127 && !separators.contains(UInt8(byte))
            XCTAssertEqual(FastCGIResponse.isTokenByte(UInt8(byte)), expected, "byte \(byte)")
        }
    }

    func testEveryHeaderByteIsChecked() {
        for byte in UInt8(0)...UInt8(255) {
            let name = "X-" + String(decoding: [byte], as: UTF8.self) + "-Y"
            let response = FastCGIResponse(status: 200, headers: [(name, "v")])
            let text = String(decoding: response.serialized(), as: UTF8.self)
            let kept = text.contains(": v\r\n")
            XCTAssertEqual(kept, name.utf8.allSatisfy(FastCGIResponse.isTokenByte), "name byte \(byte)")
        }
        let response = FastCGIResponse(status: 200, headers: [("X", "a\u{0}b\u{1f}c\u{7f}d\te\u{80}")])
        XCTAssertEqual(String(decoding: response.serialized(), as: UTF8.self),
                       "Status: 200 OK\r\nX: abcd\te\u{80}\r\nContent-Length: 0\r\n\r\n")
    }
}
