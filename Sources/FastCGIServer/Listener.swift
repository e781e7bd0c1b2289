import CFastCGI
import Glibc

/// The listening socket: bound by the server (`--listen`) or inherited on fd 0 (spawn-fcgi),
/// made non-blocking so that one worker can accept until EAGAIN.
struct Listener: Sendable {
    let descriptor: Int32
    /// TCP (IPv4 or IPv6) rather than a Unix socket: only then are peers filtered by address.
    let isTCP: Bool

    /// Opens (or adopts) the socket `address` names.
    init(_ address: ListenAddress, backlog: Int) throws(FastCGIServerError) {
        if let path = address.socketPath {
            let descriptor = FCGX_OpenSocket(path, Int32(backlog))
            guard descriptor >= 0 else { throw .cannotListen(address.description) }
            self.descriptor = descriptor
        } else {
            var accepting: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) == 0, accepting == 1 else {
                throw .noInheritedSocket
            }
            descriptor = 0
        }
        let descriptor = self.descriptor
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw .cannotListen(address.description) }
        let family = Int32(storage.ss_family)
        isTCP = family == AF_INET || family == AF_INET6
        let flags = fcntl(descriptor, F_GETFL)
        guard flags >= 0, fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) == 0 else { throw .cannotListen(address.description) }
    }
}
