import Foundation

/// An HTTP response as the test client received it.
public struct HTTPResponse: Sendable {
    public let status: Int
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// All values of header `name` (case-insensitive).
    public func headers(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    /// The value of cookie `name` set by this response, if any.
    public func setCookieValue(_ name: String = "sid") -> String? {
        for header in headers("Set-Cookie") {
            let pair = header.prefix { $0 != ";" }
            if pair.hasPrefix(name + "=") { return String(pair.dropFirst(name.count + 1)) }
        }
        return nil
    }

    /// `count` from a `{"count":N}` body.
    public var count: Int? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        return object["count"] as? Int
    }
}

/// A minimal blocking HTTP/1.1 client over a loopback socket: one request per connection, so
/// tests can also send malformed bytes that no real client library would produce.
public enum HTTPClient {
    public static func get(port: Int, path: String, cookie: String? = nil, headers: [(String, String)] = []) throws -> HTTPResponse {
        var all = headers
        if let cookie { all.append(("Cookie", cookie)) }
        return try request(port: port, method: "GET", path: path, headers: all)
    }

    public static func request(port: Int, method: String, path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) throws -> HTTPResponse {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return try raw(port: port, bytes: Array(head.utf8) + (body ?? []))
    }

    /// Sends `bytes` as they are and parses whatever comes back.
    public static func raw(port: Int, bytes: [UInt8], timeout: TimeInterval = 10) throws -> HTTPResponse {
        guard let fd = LoopbackSocket.connect(port: port, receiveTimeout: timeout) else {
            throw TestSupportError.protocolError("cannot connect to port \(port)")
        }
        defer { close(fd) }
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server may answer and close before reading everything
            sent += n
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received.append(contentsOf: buffer[0..<n])
        }
        return try parse(received)
    }

    static func parse(_ bytes: [UInt8]) throws -> HTTPResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.firstRange(of: separator) else {
            throw TestSupportError.protocolError("no complete response (\(bytes.count) bytes)")
        }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw TestSupportError.protocolError("bad status line")
        }
        let headers: [(name: String, value: String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(bytes[end.upperBound...])
        if headers.contains(where: { $0.name.lowercased() == "transfer-encoding" && $0.value.lowercased().contains("chunked") }) {
            body = dechunk(body)
        }
        return HTTPResponse(status: status, headers: headers, body: body)
    }

    private static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = bytes[index...].firstRange(of: [13, 10]) else { break }
            let sizeText = String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.prefix { $0 != ";" }, radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            guard start + size <= bytes.count else { break }
            result.append(contentsOf: bytes[start..<start + size])
            index = start + size + 2
        }
        return result
    }
}
