import CFastCGI
import CLinux
import Glibc

/// Whether this process can tell when libfcgi read past a request's end
/// (`session_fcgx_bytes_read_ahead`, which reads libfcgi 2.4.2's private stream data): checked
/// once, by reading a request followed by 8 bytes of a next one through libfcgi itself, over a
/// socket pair. Should another libfcgi lay its stream out differently, the check fails and
/// workers rely on the peek alone (`Worker.take`), instead of trusting a wrong figure.
enum LibfcgiReadAhead {
    /// Computed on first use, after `FCGX_Init`.
    static let isMeasurable: Bool = measuresExactly()

    private static func measuresExactly() -> Bool {
        func record(_ type: UInt8, _ content: [UInt8]) -> [UInt8] {
            [1, type, 0, 1, 0, UInt8(content.count), 0, 0] + content
        }
        let request = record(1, [0, 1, 1, 0, 0, 0, 0, 0]) + record(4, [1, 1, 65, 66, 0, 0, 0, 0]) + record(4, []) + record(5, [])
        let next: [UInt8] = [1, 1, 0, 1, 0, 8, 0, 0]
        let bytes = request + next
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { return false }
        let (sender, receiver) = (pair[0], pair[1])
        defer { close(sender) }
        let written = bytes.withUnsafeBytes { write(sender, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            close(receiver)
            return false
        }
        let libfcgiRequest = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { libfcgiRequest.deallocate() }
        FCGX_InitRequest(libfcgiRequest, -1, 0)
        libfcgiRequest.pointee.keepConnection = 1
        libfcgiRequest.pointee.detached = 1
        libfcgiRequest.pointee.ipcFd = receiver
        guard FCGX_Accept_r(libfcgiRequest) >= 0 else {
            if libfcgiRequest.pointee.ipcFd == receiver { close(receiver) }
            FCGX_Free(libfcgiRequest, 0)
            return false
        }
        var ahead = -1
        if let input = libfcgiRequest.pointee.in {
            var chunk = [CChar](repeating: 0, count: 64)
            while chunk.withUnsafeMutableBufferPointer({ FCGX_GetStr($0.baseAddress, Int32($0.count), input) }) > 0 {}
            if FCGX_HasSeenEOF(input) != 0 { ahead = session_fcgx_bytes_read_ahead(input) }
        }
        _ = FCGX_FClose(libfcgiRequest.pointee.err)
        _ = FCGX_FClose(libfcgiRequest.pointee.out)
        FCGX_Free(libfcgiRequest, 0)
        close(receiver)
        return ahead == next.count
    }
}
