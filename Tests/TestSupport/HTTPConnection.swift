import Foundation

/// One HTTP/1.1 connection kept open across requests (keep-alive). nginx serves a connection
/// from one worker process, so every request on it sees that worker's state: what a test needs
/// to show behaviour that differs between workers.
public final class HTTPConnection: @unchecked Sendable {
    // @unchecked: a connection carries one request at a time; a test may hand it to another
    // thread, but never uses it from two threads at once (nothing here is locked).
    private let fd: Int32
    private let port: Int
    private var pending: [UInt8] = []

    /// Connects to 127.0.0.1:`port`; each read waits at most `timeout`.
    public init(port: Int, timeout: TimeInterval = 20) throws {
        guard let fd = LoopbackSocket.connect(port: port, receiveTimeout: timeout) else {
            throw TestSupportError.protocolError("cannot connect to port \(port)")
        }
        self.fd = fd
        self.port = port
    }

    deinit { close(fd) }

    /// Sends one request on the connection and reads its whole response.
    public func request(method: String = "GET", path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) throws -> HTTPResponse {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + (body ?? [])
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestSupportError.protocolError("connection closed while sending") }
            sent += n
        }
        return try readResponse(method: method)
    }

    private func readResponse(method: String) throws -> HTTPResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        while pending.firstRange(of: separator) == nil { try receiveMore() }
        let end = pending.firstRange(of: separator)!.upperBound
        let head = Array(pending[..<end])
        pending.removeFirst(end)
        let parsedHead = try HTTPClient.parse(head)
        var body: [UInt8] = []
        if method == "HEAD" || parsedHead.status == 204 || parsedHead.status == 304 {
            body = []
        } else if let length = parsedHead.header("Content-Length").flatMap({ Int($0) }) {
            while pending.count < length { try receiveMore() }
            body = Array(pending[..<length])
            pending.removeFirst(length)
        } else if parsedHead.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
            // Keep the chunks as they came (HTTPClient.parse decodes them), up to the last one.
            let lineBreak: [UInt8] = [13, 10]
            var index = 0
            while true {
                while pending[index...].firstRange(of: lineBreak) == nil { try receiveMore() }
                let line = pending[index...].firstRange(of: lineBreak)!
                let sizeText = String(decoding: pending[index..<line.lowerBound], as: UTF8.self).prefix { $0 != ";" }
                guard let size = Int(sizeText, radix: 16) else { throw TestSupportError.protocolError("bad chunk size") }
                let next = line.upperBound + size + 2
                while pending.count < next { try receiveMore() }
                index = next
                if size == 0 { break }
            }
            body = Array(pending[..<index])
            pending.removeFirst(index)
        } else {
            throw TestSupportError.protocolError("a response without length on a kept-alive connection")
        }
        return try HTTPClient.parse(head + body)
    }

    private func receiveMore() throws {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = buffer.withUnsafeMutableBufferPointer { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw TestSupportError.protocolError(n == 0 ? "connection closed" : "no response in time") }
        pending.append(contentsOf: buffer[0..<n])
    }
}
