import Glibc

/// A TCP or Unix-socket connection with bounded connect, read and write.
final class SocketTransport: RedisTransport {
    private(set) var descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { close() }

    /// Connects to `address` within `connectTimeoutMilliseconds` (every resolved address is
    /// tried in turn within that bound), then sets the per-call I/O timeout.
    static func connect(_ address: RedisAddress, connectTimeoutMilliseconds: Int, ioTimeoutMilliseconds: Int) throws(RedisError) -> SocketTransport {
        let deadline = Deadline(millisecondsFromNow: connectTimeoutMilliseconds)
        let descriptor: Int32
        switch address {
        case .tcp(let host, let port):
            descriptor = try connectTCP(host: host, port: port, deadline: deadline)
        case .unix(let path):
            descriptor = try connectUnix(path: path, deadline: deadline)
        }
        let transport = SocketTransport(descriptor: descriptor)
        try transport.makeBlocking(ioTimeoutMilliseconds: ioTimeoutMilliseconds)
        return transport
    }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(RedisError) {
        guard let base = bytes.baseAddress else { return }
        var sent = 0
        while sent < bytes.count {
            let count = send(descriptor, base + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            if count > 0 {
                sent += count
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                throw Self.ioError(errno, reading: false)
            }
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(RedisError) -> Int {
        while true {
            let count = recv(descriptor, buffer.baseAddress, buffer.count, 0)
            if count > 0 { return count }
            if count == 0 { throw .connectionLost("connection closed by the server") }
            if errno == EINTR { continue }
            throw Self.ioError(errno, reading: true)
        }
    }

    func isIdleAndHealthy() -> Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) == 0
    }

    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    /// Reads or writes that fail with EAGAIN on a blocking socket hit SO_RCVTIMEO/SO_SNDTIMEO.
    static func ioError(_ code: Int32, reading: Bool) -> RedisError {
        if code == EAGAIN || code == EWOULDBLOCK { return .timedOut }
        return .connectionLost("\(reading ? "read" : "write") failed: \(String(cString: strerror(code)))")
    }

    // MARK: - Connecting

    private static func connectTCP(host: String, port: Int, deadline: Deadline) throws(RedisError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw .connectFailed("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address for \(host)"
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            cursor = info.pointee.ai_next
            guard let address = info.pointee.ai_addr else { continue }
            do {
                let descriptor = try connectSocket(family: info.pointee.ai_family, address: address,
                                                   length: info.pointee.ai_addrlen, deadline: deadline)
                var on: Int32 = 1
                setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
                return descriptor
            } catch {
                lastError = error.description
                if deadline.hasPassed { break }
            }
        }
        throw .connectFailed(lastError.hasPrefix("redis connect failed: ") ? String(lastError.dropFirst("redis connect failed: ".count)) : lastError)
    }

    private static func connectUnix(path: String, deadline: Deadline) throws(RedisError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else { throw .connectFailed("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        return try withUnsafePointer(to: &address) { pointer throws(RedisError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw throws(RedisError) in
                try connectSocket(family: AF_UNIX, address: raw, length: socklen_t(MemoryLayout<sockaddr_un>.size), deadline: deadline)
            }
        }
    }

    /// A non-blocking connect waited for with poll until `deadline`.
    private static func connectSocket(family: Int32, address: UnsafePointer<sockaddr>, length: socklen_t,
                                      deadline: Deadline) throws(RedisError) -> Int32 {
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw .connectFailed("socket: \(String(cString: strerror(errno)))") }
        if Glibc.connect(descriptor, address, length) == 0 { return descriptor }
        guard errno == EINPROGRESS else {
            let code = errno
            Glibc.close(descriptor)
            throw .connectFailed(String(cString: strerror(code)))
        }
        while true {
            var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&poller, 1, Int32(deadline.remainingMilliseconds))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else {
                Glibc.close(descriptor)
                throw .connectFailed("connect timed out")
            }
            break
        }
        var code: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &code, &size)
        guard code == 0 else {
            Glibc.close(descriptor)
            throw .connectFailed(String(cString: strerror(code)))
        }
        return descriptor
    }

    private func makeBlocking(ioTimeoutMilliseconds: Int) throws(RedisError) {
        let flags = fcntl(descriptor, F_GETFL)
        guard flags >= 0, fcntl(descriptor, F_SETFL, flags & ~O_NONBLOCK) == 0 else {
            close()
            throw .connectFailed("fcntl: \(String(cString: strerror(errno)))")
        }
        var timeout = timeval(tv_sec: ioTimeoutMilliseconds / 1000, tv_usec: (ioTimeoutMilliseconds % 1000) * 1000)
        let size = socklen_t(MemoryLayout<timeval>.size)
        guard setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, size) == 0,
              setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, size) == 0 else {
            close()
            throw .connectFailed("setsockopt: \(String(cString: strerror(errno)))")
        }
    }
}
