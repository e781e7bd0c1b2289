/// Whether the bytes waiting on a connection hold a whole FastCGI request, read from the
/// record headers only (pure, no I/O). A worker hands a TCP connection to libfcgi only when
/// they do: libfcgi reads with blocking calls, so a peer that sent part of a request and
/// stopped would otherwise hold a worker for the I/O timeout; until then the connection waits
/// in epoll like an idle one, costing no thread.
///
/// A request is whole once its `FCGI_STDIN` stream has ended (the empty STDIN record of the
/// request that `FCGI_BEGIN_REQUEST` opened): nginx sends the params and the whole body first.
package enum RequestFraming {
    package enum Verdict: Equatable, Sendable {
        /// A whole request is there.
        case complete
        /// Not yet: at least `bytesNeeded` bytes (counted from the first) must be waiting.
        case incomplete(bytesNeeded: Int)
        /// Not FastCGI (wrong version byte): libfcgi refuses it at once, without blocking.
        case notFastCGI
    }

    private static let headerLength = 8
    private static let versionOne: UInt8 = 1
    private static let beginRequest: UInt8 = 1
    private static let standardInput: UInt8 = 5

    package static func inspect(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        var offset = 0
        var requestID: Int?
        while true {
            guard bytes.count >= offset + headerLength else { return .incomplete(bytesNeeded: offset + headerLength) }
            guard bytes[offset] == versionOne else { return .notFastCGI }
            let type = bytes[offset + 1]
            let id = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let contentLength = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let end = offset + headerLength + contentLength + Int(bytes[offset + 6])
            guard bytes.count >= end else { return .incomplete(bytesNeeded: end) }
            if type == beginRequest && requestID == nil && id != 0 {
                requestID = id
            } else if type == standardInput && contentLength == 0 && id == requestID {
                return .complete
            }
            offset = end
        }
    }
}
