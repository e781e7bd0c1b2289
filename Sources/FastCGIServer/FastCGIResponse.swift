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
    /// token drops the whole header.
    public func serialize(into buffer: inout OutputBuffer) {
        buffer.append("Status: " as StaticString)
        buffer.appendDecimal(Int64(status))
        buffer.append(byte: UInt8(ascii: " "))
        buffer.append(Self.reasonPhrase(status))
        buffer.append("\r\n" as StaticString)
        for header in headers where Self.isToken(header.name) {
            buffer.append(header.name)
            buffer.append(": " as StaticString)
            var value = header.value
            value.withUTF8 { text in
                if text.contains(where: Self.isForbiddenInValue) {
                    buffer.append(text.filter { !Self.isForbiddenInValue($0) })
                } else {
                    buffer.append(UnsafeRawBufferPointer(text))
                }
            }
            buffer.append("\r\n" as StaticString)
        }
        buffer.append("Content-Length: " as StaticString)
        buffer.appendDecimal(Int64(body.count))
        buffer.append("\r\n\r\n" as StaticString)
        buffer.append(body)
    }

    /// Control characters other than horizontal tab, and DEL.
    private static func isForbiddenInValue(_ byte: UInt8) -> Bool {
        (byte < 32 && byte != 9) || byte == 127
    }

    /// An RFC 9110 token: visible ASCII except separators.
    private static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 > 32 && $0 < 127 && !"()<>@,;:\\\"/[]?={}".utf8.contains($0) }
    }

    static func reasonPhrase(_ status: Int) -> StaticString {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 302: return "Found"
        case 303: return "See Other"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 415: return "Unsupported Media Type"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}
