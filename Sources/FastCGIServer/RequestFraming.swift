/// Whether the bytes waiting on a connection hold a whole FastCGI request, read from the
/// record headers only (pure, no I/O). A worker hands a connection (TCP or Unix) to libfcgi
/// only when they do: libfcgi reads with blocking calls, so a peer that sent part of a request
/// and stopped would otherwise hold a worker for the I/O timeout; until then the connection
/// waits in epoll like an idle one (or parked), costing no thread.
///
/// A request is whole once its `FCGI_STDIN` stream has ended (the empty STDIN record of the
/// request that `FCGI_BEGIN_REQUEST` opened): nginx sends the params and the whole body first.
///
/// Some bytes are refused before libfcgi sees them, because libfcgi 2.4.2 (Debian 12) takes the
/// whole process down on them (found by fuzzing with libfcgi as the oracle):
/// - params whose name-value lengths declare more than `maxParamsBytes`: libfcgi allocates each
///   pair at its declared size and aborts (`Malloc: Assertion ... failed`) when that fails,
///   which two lengths adding up past `INT_MAX` always make happen. Params must also end within
///   `maxParamsBytes`, so that none can hide past the bytes a worker inspects;
/// - management records (request id 0), which nginx never sends: libfcgi leaks 48 bytes on each
///   one, answers `FCGI_GET_VALUES` in a 64-byte stack buffer that a name asked for four times
///   overflows (`stack smashing detected`), and aborts on huge lengths there as above;
/// - a `FCGI_STDIN` record before the params have ended, which nginx never sends: libfcgi goes
///   on reading params past it, beyond the bytes inspected (where it met, and leaked on, a
///   management record);
/// - a role other than the responder's, which nginx never asks for: libfcgi answers it and
///   reads on for another request, past the bytes inspected (found by fuzzing);
/// - padding after `BEGIN_REQUEST` (which must hold exactly its 8 bytes) or after an empty
///   record, which libfcgi does not skip but reads as the next record header: a management
///   record hidden there passed this check and reached libfcgi's overflowing stack buffer
///   (found by a review);
/// - any record but the one request's `BEGIN_REQUEST`, `PARAMS` and then `STDIN`, in that
///   order (nginx never multiplexes, and sends nothing else): libfcgi skips a record of another
///   request id, and after an empty one it stays in its skipping state and drops the content
///   of the next `PARAMS` record too (found by an attack pass). Its params parser is then out
///   of step with the bytes inspected here: 100 bytes of a value checked here were read there
///   as two lengths of 2^31 - 16, and the allocation's assertion took the process down.
package enum RequestFraming {
    package enum Verdict: Equatable, Sendable {
        /// A whole request is there, in the first `length` bytes; any after it are a next
        /// request's, sent before this one was answered (which nginx never does).
        case complete(length: Int)
        /// Not yet: at least `bytesNeeded` bytes (counted from the first) must be waiting.
        case incomplete(bytesNeeded: Int)
        /// Not FastCGI (wrong version byte): libfcgi refuses it at once, without blocking.
        case notFastCGI
        /// Bytes libfcgi must never read (see above): the connection is closed.
        case refused

        package var isIncomplete: Bool {
            if case .incomplete = self { return true }
            return false
        }
    }

    /// The most bytes a request's params may take, and the offset by which they must have ended.
    /// nginx sends the params first, and our template caps request headers at 32 KiB.
    package static let maxParamsBytes = 64 * 1024

    private static let headerLength = 8
    private static let versionOne: UInt8 = 1
    private static let beginRequest: UInt8 = 1
    private static let params: UInt8 = 4
    private static let standardInput: UInt8 = 5
    private static let responderRole: UInt8 = 1

    package static func inspect(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        var offset = 0
        var requestID: Int?
        var pairs = PairLengths()
        var paramsEnded = false
        while true {
            guard bytes.count >= offset + headerLength else { return .incomplete(bytesNeeded: offset + headerLength) }
            // Not FastCGI at all: libfcgi refuses it at once. Past the first record, refused here.
            guard bytes[offset] == versionOne else { return offset == 0 ? .notFastCGI : .refused }
            let type = bytes[offset + 1]
            let id = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let contentLength = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let padding = Int(bytes[offset + 6])
            let end = offset + headerLength + contentLength + padding
            // Known from the header alone, so a worker whose buffer filled up before the end of
            // this record knows the params ended within it.
            if !paramsEnded && end > maxParamsBytes { return .refused }
            if id == 0 { return .refused }
            // The one order nginx sends: BEGIN_REQUEST, PARAMS up to an empty one, then STDIN
            // (an early STDIN would have libfcgi read params on past it, beyond the bytes
            // inspected here); all of one request id. Decided from the header alone.
            if let requestID {
                guard id == requestID else { return .refused }
                guard (type == params && !paramsEnded) || (type == standardInput && paramsEnded) else { return .refused }
                // libfcgi does not skip the padding of an empty record: it would read it as
                // the next record's header (where a management record hides from this check).
                guard contentLength > 0 || padding == 0 else { return .refused }
            } else {
                // The same for BEGIN_REQUEST, whose body libfcgi reads as exactly 8 bytes.
                guard type == beginRequest, contentLength == 8, padding == 0 else { return .refused }
            }
            guard bytes.count >= end else { return .incomplete(bytesNeeded: end) }
            if requestID == nil {
                // The responder role (1), the only one nginx asks for: for another, libfcgi
                // answers "unknown role" and reads on for a next request, past these bytes.
                let body = offset + headerLength
                guard bytes[body] == 0, bytes[body + 1] == responderRole else { return .refused }
                requestID = id
            } else if type == params {
                if contentLength == 0 {
                    paramsEnded = true
                } else {
                    let content = offset + headerLength
                    guard pairs.read(UnsafeRawBufferPointer(rebasing: bytes[content..<content + contentLength])) else {
                        return .refused
                    }
                }
            } else if contentLength == 0 {
                return .complete(length: end)
            }
            offset = end
        }
    }

    /// Reads the name and value lengths of a params stream (1 byte below 128, else 4 bytes with
    /// the top bit set) across record boundaries, skipping the names and values themselves.
    private struct PairLengths {
        /// Name and value bytes of the current pair still to skip.
        private var toSkip = 0
        /// A 4-byte length being read: its value so far and the bytes it still needs.
        private var partial = 0
        private var partialMissing = 0
        /// The name's length once read, while the value's is being read.
        private var nameLength: Int?
        /// Everything the params declared so far.
        private var declared = 0

        /// False once the params declare more than `maxParamsBytes`.
        mutating func read(_ content: UnsafeRawBufferPointer) -> Bool {
            var index = 0
            while index < content.count {
                if toSkip > 0 {
                    let skipped = min(toSkip, content.count - index)
                    toSkip -= skipped
                    index += skipped
                    continue
                }
                let byte = content[index]
                index += 1
                let length: Int
                if partialMissing > 0 {
                    partial = partial << 8 | Int(byte)
                    partialMissing -= 1
                    guard partialMissing == 0 else { continue }
                    length = partial
                } else if byte & 0x80 != 0 {
                    partial = Int(byte & 0x7F)
                    partialMissing = 3
                    continue
                } else {
                    length = Int(byte)
                }
                guard let name = nameLength else {
                    nameLength = length
                    continue
                }
                nameLength = nil
                declared += name + length
                guard declared <= maxParamsBytes else { return false }
                toSkip = name + length
            }
            return true
        }
    }
}
