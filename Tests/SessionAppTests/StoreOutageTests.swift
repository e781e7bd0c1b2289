import XCTest
@testable import SessionApp

/// The outage that the log reports ending once: only after a quiet period with no failure.
final class StoreOutageTests: XCTestCase {
    func testAnOutageEndsOnceAfterAQuietPeriod() {
        let outage = StoreOutage(quietMilliseconds: 50)
        XCTAssertNil(outage.noteAnswered(), "no outage, nothing ends")
        outage.noteUnavailable()
        XCTAssertNil(outage.noteAnswered(), "a success right after a failure (another worker still reconnecting) ends nothing")
        usleep(30_000)
        outage.noteUnavailable()
        usleep(30_000)
        XCTAssertNil(outage.noteAnswered(), "the quiet period counts from the last failure")
        usleep(40_000)
        let lasted = try? XCTUnwrap(outage.noteAnswered())
        XCTAssertNotNil(lasted)
        XCTAssertGreaterThanOrEqual(lasted ?? 0, 20, "from the first failure to the last")
        XCTAssertNil(outage.noteAnswered(), "ended once")
        outage.noteUnavailable()
        usleep(60_000)
        XCTAssertNotNil(outage.noteAnswered(), "a new outage ends on its own")
    }
}
