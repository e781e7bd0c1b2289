import XCTest
import Synchronization
@testable import SessionApp

/// The outage that the log reports ending once: only after a quiet period with no failure.
/// The clock is the test's own, so a descheduled test thread cannot end the outage early.
final class StoreOutageTests: XCTestCase {
    func testAnOutageEndsOnceAfterAQuietPeriod() {
        let clock = Atomic<Int64>(1_000)
        let outage = StoreOutage(quietMilliseconds: 50, now: { clock.load(ordering: .relaxed) })
        func pass(_ milliseconds: Int64) { clock.add(milliseconds, ordering: .relaxed) }
        XCTAssertNil(outage.noteAnswered(), "no outage, nothing ends")
        outage.noteUnavailable()
        XCTAssertNil(outage.noteAnswered(), "a success right after a failure (another worker still reconnecting) ends nothing")
        pass(30)
        outage.noteUnavailable()
        pass(30)
        XCTAssertNil(outage.noteAnswered(), "the quiet period counts from the last failure")
        pass(20)
        XCTAssertEqual(outage.noteAnswered(), 30, "from the first failure to the last")
        XCTAssertNil(outage.noteAnswered(), "ended once")
        outage.noteUnavailable()
        pass(49)
        XCTAssertNil(outage.noteAnswered())
        pass(1)
        XCTAssertEqual(outage.noteAnswered(), 0, "a new outage ends on its own")
    }

    func testTheRealClockEndsAnOutage() {
        let outage = StoreOutage(quietMilliseconds: 20)
        outage.noteUnavailable()
        usleep(100_000)
        XCTAssertNotNil(outage.noteAnswered())
    }
}

/// A log that cannot be written (a full disk) costs nothing but the lines, and says how many.
final class LogSinkTests: XCTestCase {
    func testLinesThatCannotBeWrittenAreCounted() throws {
        let full = try LogSink(path: "/dev/full")  // every write fails with ENOSPC
        full.write("ts=1 level=info msg=one\n")
        full.write("ts=2 level=info msg=two\n")
        XCTAssertEqual(full.linesLost, 2)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("logsink-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("log").path
        let fine = try LogSink(path: path)
        fine.write("ts=1 level=info msg=one\n")
        XCTAssertEqual(fine.linesLost, 0)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "ts=1 level=info msg=one\n")
    }
}
