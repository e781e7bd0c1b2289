import CFastCGI
import Glibc

/// What libfcgi makes of bytes arriving on a connection: the oracle for the request framing.
/// The request is read the way a worker reads it (`Worker.serveOneRequest`: the descriptor
/// handed to `FCGX_Accept_r` with keep-connection and detached set), from one end of a Unix
/// socket pair whose other end has sent the bytes.
struct LibfcgiReading: Equatable {
    /// Whether `FCGX_Accept_r` returned a request.
    var accepted = false
    /// Its `NAME=VALUE` environment, in order.
    var environment: [[UInt8]] = []
    /// Its body (FCGI_STDIN), as far as it could be read.
    var body: [UInt8] = []
    /// Whether the body's stream ended (the empty STDIN record was read).
    var bodyEnded = false
    /// The input stream's error after reading the body (0: none; `EAGAIN`: libfcgi wanted
    /// bytes that had not arrived).
    var bodyError: Int32 = 0
    /// Bytes libfcgi read past the end of the input stream, as the worker measures them
    /// (`session_fcgx_bytes_read_ahead`; -1: unknown). Not part of `==`: it depends on what
    /// followed the request, not on how the request was read.
    var readAhead = 0

    static func == (left: LibfcgiReading, right: LibfcgiReading) -> Bool {
        (left.accepted, left.environment, left.body, left.bodyEnded, left.bodyError)
            == (right.accepted, right.environment, right.body, right.bodyEnded, right.bodyError)
    }

    /// How the sending end behaves after the bytes.
    enum Peer {
        /// Closes its side for writing: libfcgi sees the end of the stream.
        case closesAfterSending
        /// Stays connected and silent; the reading end is non-blocking, so a read past the
        /// bytes fails with `EAGAIN` where a worker would block.
        case staysSilent
    }

    private static let initialized: Bool = FCGX_Init() == 0

    /// Reads one request from `bytes`; nil when no socket pair could be made.
    static func read(_ bytes: UnsafeRawBufferPointer, peer: Peer) -> LibfcgiReading? {
        guard initialized else { return nil }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { return nil }
        let (sender, receiver) = (pair[0], pair[1])
        defer { close(sender) }
        var sent = 0
        while sent < bytes.count, let base = bytes.baseAddress {
            let written = write(sender, base + sent, bytes.count - sent)
            guard written > 0 else { close(receiver); return nil }
            sent += written
        }
        switch peer {
        case .closesAfterSending: shutdown(sender, Int32(SHUT_WR))
        case .staysSilent: _ = fcntl(receiver, F_SETFL, fcntl(receiver, F_GETFL) | O_NONBLOCK)
        }

        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        FCGX_InitRequest(request, -1, 0)
        request.pointee.keepConnection = 1
        request.pointee.detached = 1
        request.pointee.ipcFd = receiver
        var reading = LibfcgiReading()
        guard FCGX_Accept_r(request) >= 0 else {
            // libfcgi closed the descriptor when it gave up (its ipcFd is -1 then).
            if request.pointee.ipcFd == receiver { close(receiver) }
            FCGX_Free(request, 0)
            return reading
        }
        reading.accepted = true
        var cursor = request.pointee.envp
        while let entry = cursor?.pointee {
            reading.environment.append(Array(UnsafeRawBufferPointer(start: entry, count: strlen(entry))))
            cursor = cursor.map { $0 + 1 }
        }
        var chunk = [CChar](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBufferPointer { FCGX_GetStr($0.baseAddress, Int32($0.count), request.pointee.in) }
            if count > 0 { reading.body += chunk[0..<Int(count)].map { UInt8(bitPattern: $0) } }
            if count < Int32(chunk.count) { break }
        }
        reading.bodyEnded = FCGX_HasSeenEOF(request.pointee.in) == EOF
        reading.bodyError = FCGX_GetError(request.pointee.in)
        reading.readAhead = session_fcgx_bytes_read_ahead(request.pointee.in)
        // Finish as the worker does, without letting libfcgi close the descriptor.
        _ = FCGX_FClose(request.pointee.err)
        _ = FCGX_FClose(request.pointee.out)
        FCGX_Free(request, 0)
        close(receiver)
        return reading
    }
}
