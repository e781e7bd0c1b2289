import Foundation

/// One FastCGI connection spoken byte by byte, as nginx does (and as a hostile peer might not):
/// requests with or without FCGI_KEEP_CONN, several on one connection, half a request, or
/// nothing at all. Every read is bounded by `timeout`, so a test fails instead of hanging.
public final class FastCGIConnection {
    public let descriptor: Int32
    private var pending: [UInt8] = []

    /// Connects to 127.0.0.1:`port`, from `sourceAddress` (e.g. "127.0.0.2") when given.
    public init(port: Int, host: String = "127.0.0.1", sourceAddress: String? = nil, timeout: TimeInterval = 5) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestSupportError.protocolError("socket: \(errno)") }
        Self.setReceiveTimeout(descriptor, timeout)
        if let sourceAddress {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(sourceAddress)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                Glibc.close(descriptor)
                throw TestSupportError.protocolError("bind \(sourceAddress): \(errno)")
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(descriptor)
            throw TestSupportError.protocolError("connect to \(host):\(port): \(errno)")
        }
    }

    /// Connects to the Unix socket at `path`.
    public init(unixPath path: String, timeout: TimeInterval = 5) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestSupportError.protocolError("socket: \(errno)") }
        Self.setReceiveTimeout(descriptor, timeout)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(descriptor)
            throw TestSupportError.protocolError("connect to \(path): \(errno)")
        }
    }

    deinit { Glibc.close(descriptor) }

    private static func setReceiveTimeout(_ descriptor: Int32, _ timeout: TimeInterval) {
        var value = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - floor(timeout)) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    // MARK: - Requests

    /// `GET path` params as nginx sends them.
    public static func getParams(_ path: String, cookie: String? = nil) -> [(String, String)] {
        var params = [("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", path), ("REQUEST_URI", path),
                      ("QUERY_STRING", ""), ("SERVER_PROTOCOL", "HTTP/1.1"), ("REMOTE_ADDR", "127.0.0.1")]
        if let cookie { params.append(("HTTP_COOKIE", cookie)) }
        return params
    }

    /// The bytes of a whole request: BEGIN_REQUEST, PARAMS, empty PARAMS, STDIN, empty STDIN.
    public static func requestBytes(params: [(String, String)], body: [UInt8] = [], keepConnection: Bool, requestID: UInt16 = 1) -> [UInt8] {
        var bytes = record(type: 1, requestID: requestID, content: [0, 1, keepConnection ? 1 : 0, 0, 0, 0, 0, 0])
        var encoded: [UInt8] = []
        for (name, value) in params {
            encoded += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
        }
        bytes += record(type: 4, requestID: requestID, content: encoded)
        bytes += record(type: 4, requestID: requestID, content: [])
        var start = 0
        while start < body.count {
            let end = min(body.count, start + 32 * 1024)
            bytes += record(type: 5, requestID: requestID, content: Array(body[start..<end]))
            start = end
        }
        bytes += record(type: 5, requestID: requestID, content: [])
        return bytes
    }

    private static func record(type: UInt8, requestID: UInt16, content: [UInt8]) -> [UInt8] {
        let padding = (8 - content.count % 8) % 8
        return [1, type, UInt8(requestID >> 8), UInt8(requestID & 0xff), UInt8(content.count >> 8), UInt8(content.count & 0xff),
                UInt8(padding), 0] + content + [UInt8](repeating: 0, count: padding)
    }

    private static func length(_ count: Int) -> [UInt8] {
        count < 128 ? [UInt8(count)]
            : [UInt8((count >> 24) | 0x80), UInt8((count >> 16) & 0xff), UInt8((count >> 8) & 0xff), UInt8(count & 0xff)]
    }

    /// Sends `bytes` as they are.
    public func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBufferPointer { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestSupportError.protocolError("send: \(errno)") }
            sent += n
        }
    }

    /// Sends a whole request and reads its response.
    public func request(_ params: [(String, String)], body: [UInt8] = [], keepConnection: Bool = true) throws -> HTTPResponse {
        try send(Self.requestBytes(params: params, body: body, keepConnection: keepConnection))
        return try readResponse()
    }

    public func get(_ path: String, cookie: String? = nil, keepConnection: Bool = true) throws -> HTTPResponse {
        try request(Self.getParams(path, cookie: cookie), keepConnection: keepConnection)
    }

    /// Reads STDOUT records up to END_REQUEST and parses them as a CGI response.
    public func readResponse() throws -> HTTPResponse {
        var output: [UInt8] = []
        while true {
            let header = try read(8)
            let contentLength = Int(header[4]) << 8 | Int(header[5])
            let content = try read(contentLength + Int(header[6])).prefix(contentLength)
            switch header[1] {
            case 6: output += content
            case 3: return try FastCGIClient.parseCGI(output)
            default: continue
            }
        }
    }

    private func read(_ count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while pending.count < count {
            let n = buffer.withUnsafeMutableBufferPointer { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if n == 0 { throw TestSupportError.protocolError("connection closed by the server") }
            if n < 0 { throw TestSupportError.protocolError("recv: \(errno == EAGAIN ? "timed out" : "error \(errno)")") }
            pending += buffer[0..<n]
        }
        defer { pending.removeFirst(count) }
        return Array(pending[0..<count])
    }

    // MARK: - Closing

    /// Waits up to the receive timeout for the server to close the connection; returns the
    /// seconds it took, or nil if it stayed open (bytes received meanwhile are dropped).
    public func secondsUntilClosed() -> TimeInterval? {
        let started = Date()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if n > 0 { continue }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { return Date().timeIntervalSince(started) }
            if errno == EINTR { continue }
            return nil
        }
    }
}
