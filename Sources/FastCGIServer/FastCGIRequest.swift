/// One request, copied out of libfcgi before `FCGX_Finish_r` frees its memory.
public struct FastCGIRequest: Sendable {
    /// Why the body was not read.
    public enum BodyProblem: Equatable, Sendable {
        /// `CONTENT_LENGTH` was larger than the configured limit; the body was discarded.
        case tooLarge(limit: Int)
        /// `CONTENT_LENGTH` was not a decimal number.
        case malformedLength
        /// The connection ended before `CONTENT_LENGTH` bytes arrived.
        case truncated
    }

    /// All FastCGI params (`REQUEST_METHOD`, `HTTP_COOKIE`, …), as nginx sent them.
    public let params: FastCGIParams
    /// The request body (empty when there is none or when `bodyProblem` is set).
    public let body: [UInt8]
    /// Set when the body could not be read as declared.
    public let bodyProblem: BodyProblem?

    public init(params: FastCGIParams, body: [UInt8] = [], bodyProblem: BodyProblem? = nil) {
        self.params = params
        self.body = body
        self.bodyProblem = bodyProblem
    }

    /// `REQUEST_METHOD` (`GET`, `POST`, …).
    public var method: String { params["REQUEST_METHOD"] ?? "GET" }

    /// The decoded path without the query: nginx's `DOCUMENT_URI`, else the path of `REQUEST_URI`.
    public var path: String {
        if let uri = params["DOCUMENT_URI"], !uri.isEmpty { return uri }
        if let uri = params["REQUEST_URI"] {
            return String(uri.prefix { $0 != "?" })
        }
        return params["SCRIPT_NAME"] ?? "/"
    }

    /// `QUERY_STRING`, empty when absent.
    public var query: String { params["QUERY_STRING"] ?? "" }

    /// The `Cookie` header, if any.
    public var cookieHeader: String? { params["HTTP_COOKIE"] }

    /// Whether the client connection was HTTPS (`HTTPS=on`, as nginx's fastcgi_params sets it).
    public var isHTTPS: Bool {
        guard let value = params["HTTPS"] else { return false }
        return value == "on" || value == "ON" || value == "1"
    }
}
