import FastCGIServer
import XCTest

final class OutputBufferTests: XCTestCase {
    func testLargeResponseMemoryIsGivenBack() {
        var buffer = OutputBuffer(capacity: 4096)
        buffer.append([UInt8](repeating: 7, count: 200_000))
        XCTAssertGreaterThanOrEqual(buffer.capacity, 200_000)
        buffer.removeAll(shrinkingAbove: 64 * 1024)
        XCTAssertEqual(buffer.capacity, 4096)
        XCTAssertEqual(buffer.count, 0)
        buffer.append("still usable" as StaticString)
        XCTAssertEqual(Array(buffer.bytes), Array("still usable".utf8))
    }

    func testModerateGrowthIsKept() {
        var buffer = OutputBuffer(capacity: 4096)
        buffer.append([UInt8](repeating: 1, count: 20_000))
        let grown = buffer.capacity
        buffer.removeAll(shrinkingAbove: 64 * 1024)
        XCTAssertEqual(buffer.capacity, grown, "below the bound the storage is reused, not reallocated")
        buffer.removeAll()
        XCTAssertEqual(buffer.capacity, grown)
    }
}
