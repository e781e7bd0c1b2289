import XCTest
import CFastCGI
@testable import FastCGIServer

/// Deciding from record headers whether a whole request is waiting.
final class RequestFramingTests: XCTestCase {
    private func record(_ type: UInt8, id: UInt16 = 1, _ content: [UInt8] = [], padding: Int = -1) -> [UInt8] {
        let pad = padding >= 0 ? padding : (8 - content.count % 8) % 8
        return [1, type, UInt8(id >> 8), UInt8(id & 0xff), UInt8(content.count >> 8), UInt8(content.count & 0xff), UInt8(pad), 0]
            + content + [UInt8](repeating: 0, count: pad)
    }

    private var begin: [UInt8] { record(1, [0, 1, 1, 0, 0, 0, 0, 0]) }
    private var params: [UInt8] { record(4, [14, 3] + Array("REQUEST_METHODGET".utf8)) + record(4) }

    private func inspect(_ bytes: [UInt8]) -> RequestFraming.Verdict {
        bytes.withUnsafeBytes { RequestFraming.inspect($0) }
    }

    /// `bytes` are one whole request, and nothing more.
    private func assertWhole(_ bytes: [UInt8], _ message: String = "", line: UInt = #line) {
        XCTAssertEqual(inspect(bytes), .complete(length: bytes.count), message, line: line)
    }

    func testWholeRequestWithoutBody() {
        assertWhole(begin + params + record(5))
    }

    func testWholeRequestWithBodyInSeveralRecords() {
        let body = record(5, [UInt8](repeating: 65, count: 1000)) + record(5, [UInt8](repeating: 66, count: 5))
        assertWhole(begin + params + body + record(5))
    }

    func testEveryProperPrefixIsIncompleteAndNamesWhatItNeeds() {
        let whole = begin + params + record(5, [1, 2, 3]) + record(5)
        for length in 0..<whole.count {
            guard case .incomplete(let needed) = inspect(Array(whole.prefix(length))) else {
                return XCTFail("\(length) bytes judged whole")
            }
            XCTAssertGreaterThan(needed, length, "at \(length) bytes")
            XCTAssertLessThanOrEqual(needed, whole.count, "at \(length) bytes")
        }
    }

    /// A half-sent record asks for the whole record plus nothing more.
    func testNeededBytesCoverTheRecordInProgress() {
        let bytes = begin + Array(record(4, [UInt8](repeating: 0, count: 100)).prefix(20))
        XCTAssertEqual(inspect(bytes), .incomplete(bytesNeeded: begin.count + 8 + 100 + 4))
    }

    /// Found by an attack pass: libfcgi skips a record of another request id, and after an
    /// empty one it also drops the content of the next PARAMS record, so its params parser and
    /// this one disagree from there on. These bytes (161 of them) took the whole process down:
    /// 100 bytes checked here as a value were read by libfcgi as two lengths of 2^31 - 16.
    /// nginx sends one request id, in one order: anything else is refused, from its header.
    func testRecordsOfAnotherRequestOrOutOfOrderAreRefused() {
        let crash = begin + record(5, id: 7) + record(4, [0, 0x80, 0, 0, 0x64])
            + record(4, ([0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0xff, 0xf0] + [UInt8](repeating: 0x78, count: 92))) + record(4) + record(5)
        XCTAssertEqual(inspect(crash), .refused)
        for other in [record(5, id: 2), record(4, id: 2), record(4, id: 2, [1, 1, 65, 66]), record(1, id: 2, [0, 1, 0, 0, 0, 0, 0, 0])] {
            XCTAssertEqual(inspect(begin + other + params + record(5)), .refused, "\(other)")
            XCTAssertEqual(inspect(begin + params + other + record(5)), .refused, "\(other)")
            XCTAssertEqual(inspect(begin + Array(other.prefix(8))), .refused, "known from the header alone")
        }
        XCTAssertEqual(inspect(record(5) + begin + params + record(5)), .refused, "a record before BEGIN_REQUEST")
        XCTAssertEqual(inspect(record(4, [1, 1, 65, 66]) + begin + params + record(5)), .refused)
        XCTAssertEqual(inspect(begin + begin + params + record(5)), .refused, "a second BEGIN_REQUEST")
        XCTAssertEqual(inspect(begin + params + record(4) + record(5)), .refused, "PARAMS after the params ended")
        for type: UInt8 in [2, 3, 6, 7, 8, 10, 11, 200] {
            XCTAssertEqual(inspect(begin + params + record(type, [1, 2, 3]) + record(5)), .refused, "record type \(type)")
        }
        assertWhole(begin + params + record(5, [1, 2]) + record(5))
    }

    /// Management records (request id 0) never come from nginx, and libfcgi 2.4.2 mishandles
    /// them (found by fuzzing): it leaks 48 bytes on each, answers FCGI_GET_VALUES in a 64-byte
    /// stack buffer that a name asked for four times overflows, and aborts on huge lengths there.
    func testManagementRecordsAreRefused() {
        let getValues = record(9, id: 0, [15, 0] + Array("FCGI_MPXS_CONNS".utf8))
        let unknownType = record(11, id: 0, [1, 2, 3])
        for management in [getValues, unknownType] {
            XCTAssertEqual(inspect(management + begin + params + record(5)), .refused)
            XCTAssertEqual(inspect(begin + params + management + record(5)), .refused)
            XCTAssertEqual(inspect(Array(management.prefix(8))), .refused, "known from the header alone")
        }
        let whole = begin + params + record(5)
        XCTAssertEqual(inspect(whole + getValues), .complete(length: whole.count), "what follows a whole request is the next one's")
    }

    /// Found by fuzzing: an empty STDIN before the params ended looked like a whole request, but
    /// libfcgi reads on for params past it, into bytes never inspected (and leaked on the
    /// management record it found there). nginx always ends the params first.
    func testStdinBeforeTheParamsEndIsRefused() {
        let management = record(0, id: 0, [1, 2, 3])
        XCTAssertEqual(inspect(begin + record(5) + management), .refused)
        XCTAssertEqual(inspect(begin + record(4, [14, 3] + Array("REQUEST_METHODGET".utf8)) + record(5, [1]) + record(4) + record(5)), .refused)
        assertWhole(begin + params + record(5))
    }

    func testNotFastCGIIsHandedOverToBeRefused() {
        XCTAssertEqual(inspect(Array("GET / HTTP/1.1\r\n\r\n".utf8)), .notFastCGI)
    }

    /// libfcgi 2.4.2 allocates each param at the size its lengths declare and aborts the process
    /// when that fails: two lengths of 2^30 (found by fuzzing) always make it fail.
    func testParamsDeclaringMoreThanTheLimitAreRefused() {
        let overflowing = record(4, [0xC0, 0, 0, 0, 0xC0, 0, 0, 0] + Array("HTTP_X".utf8))
        XCTAssertEqual(inspect(begin + overflowing + record(4) + record(5)), .refused)
        XCTAssertEqual(inspect(begin + overflowing), .refused, "refused before the rest arrives")
        // The lengths split across records, after a pair that fits.
        let split = record(4, [3, 1] + Array("ABCx".utf8) + [0x80, 0x01]) + record(4, [0x00, 0x00, 0x05] + Array("abcde".utf8))
        XCTAssertEqual(inspect(begin + split + record(4) + record(5)), .refused, "a name of 65536 bytes")
        let limit = RequestFraming.maxParamsBytes
        func fourBytes(_ length: Int) -> [UInt8] { [0x80 | UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] }
        let atLimit = record(4, fourBytes(0x7FF0) + fourBytes(limit - 0x7FF0))
        XCTAssertNotEqual(inspect(begin + atLimit), .refused, "exactly the limit is allowed")
    }

    /// Params must end within the limit: nothing can hide a param past a worker's buffer.
    func testParamsThatDoNotEndWithinTheLimitAreRefused() {
        let valueLength = 59_990
        let bigPair = record(4, [1, 0x80, 0, UInt8(valueLength >> 8), UInt8(valueLength & 0xFF)] + Array("A".utf8)
                             + [UInt8](repeating: 66, count: valueLength))
        XCTAssertEqual(inspect(begin + bigPair + record(4, [1, 1, 67, 68] + [UInt8](repeating: 0, count: 8_000))), .refused)
        XCTAssertEqual(inspect(begin + bigPair + Array(record(4, [1, 1, 67, 68] + [UInt8](repeating: 0, count: 8_000)).prefix(8))), .refused,
                       "known from the header alone")
        assertWhole(begin + bigPair + record(4) + record(5), "params of 60 000 bytes end within the limit")
        let body = record(5, [UInt8](repeating: 0, count: 60_000))
        assertWhole(begin + params + body + body + record(5), "a large request is fine once the params ended")
    }

    func testPaddingOfTheLastRecordMustHaveArrived() {
        let body = record(5, [1, 2, 3], padding: 13)
        XCTAssertEqual(inspect(begin + params + body.prefix(20)), .incomplete(bytesNeeded: begin.count + params.count + 24))
        assertWhole(begin + params + body + record(5))
    }

    /// Found by a review: libfcgi reads BEGIN_REQUEST's 8 bytes and an empty record's header,
    /// then reads their padding as the next record header. A management record hidden in
    /// that padding passed this check and reached libfcgi's 64-byte stack buffer. nginx never
    /// pads these records.
    func testPaddingThatLibfcgiWouldReadAsRecordsIsRefused() {
        let getValues = record(9, id: 0, [15, 0] + Array("FCGI_MPXS_CONNS".utf8))
        let paddedBegin = Array([1, 1, 0, 1, 0, 8, UInt8(getValues.count), 0] + [0, 1, 1, 0, 0, 0, 0, 0]) + getValues
        XCTAssertEqual(inspect(paddedBegin + params + record(5)), .refused)
        XCTAssertEqual(inspect(Array(paddedBegin.prefix(8))), .refused, "known from the header alone")
        XCTAssertEqual(inspect(record(1, [0, 1, 1, 0, 0, 0, 0, 0, 0]) + params + record(5)), .refused, "a BEGIN_REQUEST body of 9 bytes")
        let emptyPaddedParams = [1, 4, 0, 1, 0, 0, UInt8(getValues.count), 0] + getValues
        XCTAssertEqual(inspect(begin + record(4, [14, 3] + Array("REQUEST_METHODGET".utf8)) + emptyPaddedParams + record(5)), .refused)
        XCTAssertEqual(inspect(begin + params + [1, 5, 0, 1, 0, 0, 8, 0] + [UInt8](repeating: 0, count: 8)), .refused,
                       "an empty STDIN with padding")
        assertWhole(begin + params + record(5, [1]) + record(5), "padding after content is skipped by libfcgi")
    }

    /// Found by fuzzing: for a role other than the responder's (which nginx always asks for),
    /// libfcgi answers "unknown role" and reads on for another request, past these bytes.
    func testOnlyTheResponderRoleIsAccepted() {
        for role: [UInt8] in [[0, 2], [0, 3], [0, 27], [1, 1], [0, 0]] {
            XCTAssertEqual(inspect(record(1, role + [1, 0, 0, 0, 0, 0]) + params + record(5)), .refused, "role \(role)")
        }
        assertWhole(record(1, [0, 1, 0, 0, 0, 0, 0, 0]) + params + record(5), "without keep-alive")
    }

    /// A record that is not FastCGI after the first one is refused here (libfcgi would refuse
    /// the first one by itself).
    func testAWrongVersionPastTheFirstRecordIsRefused() {
        XCTAssertEqual(inspect(begin + [2, 4, 0, 1, 0, 0, 0, 0]), .refused)
        XCTAssertEqual(inspect([2, 1, 0, 1, 0, 8, 0, 0]), .notFastCGI)
    }
}

/// The libfcgi the tests run with (Debian 12's 2.4.2) is the one whose read-ahead the worker
/// measures: were its stream laid out otherwise, workers would fall back to the peek alone.
final class LibfcgiReadAheadTests: XCTestCase {
    func testThisLibfcgisReadAheadIsMeasuredExactly() {
        XCTAssertEqual(FCGX_Init(), 0)
        XCTAssertTrue(LibfcgiReadAhead.isMeasurable)
    }
}
