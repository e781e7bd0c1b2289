/// A response to write back through FastCGI: CGI `Status`, headers and a body.
public struct FastCGIResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func == (lhs: FastCGIResponse, rhs: FastCGIResponse) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body
            && lhs.headers.map { $0.name + ":" + $0.value } == rhs.headers.map { $0.name + ":" + $0.value }
    }

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// The CGI response bytes: `Status:` line, headers, `Content-Length`, blank line, body.
    public func serialized() -> [UInt8] {
        var buffer = OutputBuffer()
        serialize(into: &buffer)
        return Array(buffer.bytes)
    }

    /// Appends the CGI response to `buffer`.
    /// A header can never split the response or smuggle another one: control characters other
    /// than tab (CR, LF, NUL, …) are dropped from values, and a name that is not an RFC 9110
    /// token drops the whole header. Both checks look at each byte once, through a bit mask:
    /// they run for every header of every response.
    public func serialize(into buffer: inout OutputBuffer) {
        buffer.append("Status: " as StaticString)
        buffer.appendDecimal(Int64(status))
        buffer.append(byte: UInt8(ascii: " "))
        buffer.append(Self.reasonPhrase(status))
        buffer.append("\r\n" as StaticString)
        for header in headers {
            var name = header.name
            var value = header.value
            name.withUTF8 { nameBytes in
                guard Self.isToken(nameBytes) else { return }
                buffer.append(UnsafeRawBufferPointer(nameBytes))
                buffer.append(": " as StaticString)
                value.withUTF8 { text in
                    if Self.isSafeValue(text) {
                        buffer.append(UnsafeRawBufferPointer(text))
                    } else {
                        for byte in text where !Self.isForbiddenInValue(byte) { buffer.append(byte: byte) }
                    }
                }
                buffer.append("\r\n" as StaticString)
            }
        }
        buffer.append("Content-Length: " as StaticString)
        buffer.appendDecimal(Int64(body.count))
        buffer.append("\r\n\r\n" as StaticString)
        buffer.append(body)
    }

    /// Control characters other than horizontal tab, and DEL.
    static func isForbiddenInValue(_ byte: UInt8) -> Bool {
        (byte < 32 && byte != 9) || byte == 127
    }

    /// Whether no byte of `value` is forbidden (the usual case: the value is copied as it is).
    static func isSafeValue(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in value where isForbiddenInValue(byte) { return false }
        return true
    }

    /// An RFC 9110 token: one or more visible ASCII characters other than the separators
    /// `( ) < > @ , ; : \ " / [ ] ? = { }`.
    static func isToken(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !name.isEmpty else { return false }
        for byte in name where !isTokenByte(byte) { return false }
        return true
    }

    /// Token characters as two masks over ASCII: bit b of `tokenLow` for b < 64, bit b - 64 of
    /// `tokenHigh` for 64 ≤ b < 128 (checked against the separator list by a unit test).
    static let tokenLow: UInt64 = 0x03ff_6cfa_0000_0000
    static let tokenHigh: UInt64 = 0x57ff_ffff_c7ff_fffe

    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        if byte < 64 { return (tokenLow >> UInt64(byte)) & 1 != 0 }
        if byte < 128 { return (tokenHigh >> UInt64(byte - 64)) & 1 != 0 }
        return false
    }

    static func reasonPhrase(_ status: Int) -> StaticString {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 415: return "Unsupported Media Type"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }
}
