import XCTest
@testable import SessionApp

/// The `/proc/self/stat` reading behind the process_* series: the command name may hold spaces
/// and parentheses, so fields are counted from the last `)`.
final class ProcessMetricsTests: XCTestCase {
    func testStatFieldsAreCountedFromTheLastParenthesis() throws {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        // cutime cstime priority nice threads itrealvalue starttime vsize rss ...
        let line = "4242 (session (x) fcgi) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 12345 987654321 3840 18446744073709551615"
        let stat = try XCTUnwrap(ProcessMetrics.SelfStat.parse(line, ticksPerSecond: 100, pageSize: 4096, bootTime: 1_700_000_000))
        XCTAssertEqual(stat.cpuSeconds, 3.0, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(stat.startTimeSeconds), 1_700_000_123.45, accuracy: 1e-6)
        XCTAssertEqual(stat.virtualBytes, 987_654_321)
        XCTAssertEqual(stat.residentBytes, 3840 * 4096)
        XCTAssertNil(ProcessMetrics.SelfStat.parse("4242 (short) S 1 2 3", ticksPerSecond: 100, pageSize: 4096, bootTime: nil))
        XCTAssertNil(ProcessMetrics.SelfStat.parse("no parenthesis at all", ticksPerSecond: 100, pageSize: 4096, bootTime: nil))
    }

    /// The live figures of this test process: a resident size and descriptors that exist.
    func testTheExpositionReadsThisProcess() throws {
        let text = ProcessMetrics.exposition()
        func value(_ name: String) throws -> Double {
            let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix(name + " ") }, name)
            return try XCTUnwrap(Double(line.split(separator: " ")[1]))
        }
        XCTAssertGreaterThan(try value("process_resident_memory_bytes"), 1_048_576)
        let before = try value("process_open_fds")
        let extra = open("/dev/null", O_RDONLY)
        defer { close(extra) }
        XCTAssertEqual(try XCTUnwrap(Double(ProcessMetrics.exposition().split(separator: "\n").first { $0.hasPrefix("process_open_fds ") }?
            .split(separator: " ")[1] ?? "")), before + 1, "one more descriptor, one more counted")
        let started = try value("process_start_time_seconds")
        XCTAssertLessThan(abs(started - Date().timeIntervalSince1970), 24 * 3600, "started within a day of now: \(started)")
    }
}
