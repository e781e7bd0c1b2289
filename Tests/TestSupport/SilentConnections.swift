import Foundation

/// TCP connections to 127.0.0.1 that never send a byte, as an attacker holding sockets open
/// would. Closed when the value goes away.
public final class SilentConnections {
    public let descriptors: [Int32]

    /// Opens `count` connections to `port`; each later read waits at most `timeout`.
    public init(count: Int, port: Int, timeout: TimeInterval = 5) throws {
        var opened: [Int32] = []
        for _ in 0..<count {
            guard let fd = LoopbackSocket.connect(port: port) else {
                opened.forEach { close($0) }
                throw TestSupportError.protocolError("cannot open silent connection \(opened.count + 1) to \(port)")
            }
            var value = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - floor(timeout)) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
            opened.append(fd)
        }
        descriptors = opened
    }

    deinit { descriptors.forEach { close($0) } }

    /// How many the server has closed by now (end of stream or reset), without waiting.
    public var closedCount: Int {
        descriptors.filter { fd in
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
            return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        }.count
    }

    /// Waits (up to the receive timeout each) for the server to close every connection; returns
    /// the seconds until each closed, measured from `start`, or nil for one that stayed open.
    public func secondsUntilEachClosed(since start: Date) -> [TimeInterval?] {
        descriptors.map { fd in
            var byte: UInt8 = 0
            while true {
                let n = recv(fd, &byte, 1, 0)
                if n > 0 { continue }
                if n < 0 && errno == EINTR { continue }
                if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { return Date().timeIntervalSince(start) }
                return nil
            }
        }
    }
}
