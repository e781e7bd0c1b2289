import CFastCGI
import CLinux
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
            if case .tcp(let host, let port) = address { try Self.probeBind(host: host, port: port, address: address) }
            else { try Self.probeSocketPath(path, address: address) }
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

    /// Before `FCGX_OpenSocket` takes a Unix socket path (it deletes whatever is there, and
    /// on a failure prints only "bind/listen: …" and exits): a socket some process still
    /// accepts on is refused (taking its path over would leave that instance serving nobody),
    /// so is a file that is not a socket, and a folder that cannot take it is named.
    private static func probeSocketPath(_ path: String, address: ListenAddress) throws(FastCGIServerError) {
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { throw .cannotListen("\(address): something that is not a socket is there") }
            // Non-blocking: a hung instance whose queue is full must not hang this start.
            let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard probe >= 0 else { return }
            defer { close(probe) }
            var socketAddress = sockaddr_un()
            socketAddress.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: socketAddress.sun_path) else { return }
            withUnsafeMutableBytes(of: &socketAddress.sun_path) { raw in
                for (index, byte) in bytes.enumerated() { raw[index] = byte }
            }
            let connected = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            let failure = errno
            if connected == 0 { throw .cannotListen("\(address): already in use by a running process") }
            switch failure {
            case ECONNREFUSED: return  // a socket nobody accepts on any more: taken over
            case EAGAIN, EINPROGRESS: throw .cannotListen("\(address): already in use by a process that accepts no connection now (hung?)")
            default: throw .cannotListen("\(address): \(String(cString: strerror(failure)))")
            }
        }
        let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        guard access(folder.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : folder, W_OK | X_OK) == 0 else {
            throw .cannotListen("\(address): \(String(cString: strerror(errno)))")
        }
    }

    /// Binds a throwaway socket where `FCGX_OpenSocket` is about to: libfcgi answers a failed
    /// bind by printing "bind/listen: …" and exiting the process, which names neither the
    /// address nor this program. An IPv4 literal or every interface; other hosts are left to
    /// libfcgi.
    private static func probeBind(host: String?, port: Int, address: ListenAddress) throws(FastCGIServerError) {
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
        if let host {
            guard inet_pton(AF_INET, host, &socketAddress.sin_addr) == 1 else { return }
        }
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard probe >= 0 else { return }
        defer { close(probe) }
        var on: Int32 = 1
        setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        let failure = errno
        guard bound == 0 else { throw .cannotListen("\(address): \(String(cString: strerror(failure)))") }
    }
}
