/// A Redis reply, copied out of hiredis's reply tree (which is freed at once).
public enum RedisReply: Equatable, Sendable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case null
    case array([RedisReply])
    case error(RedisServerError)

    /// The integer value, or `nil` for any other kind of reply.
    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// A bulk or status string decoded as UTF-8, or `nil` for any other kind of reply.
    public var text: String? {
        switch self {
        case .string(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    /// The server error carried by this reply, if it is one.
    public var serverError: RedisServerError? {
        if case .error(let error) = self { return error }
        return nil
    }
}

/// An error reply sent by the server, such as `NOSCRIPT No matching script`.
public struct RedisServerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The first word of the message (`ERR`, `NOSCRIPT`, `WRONGTYPE`, …).
    public let code: String
    /// The whole message as the server sent it.
    public let message: String

    /// Whether a Sentinel (not a data node) sent it: a refusal from one is about the
    /// Sentinels' own credentials, which are set apart from the data nodes'.
    public let fromSentinel: Bool

    public init(message: String, fromSentinel: Bool = false) {
        self.message = message
        self.code = String(message.prefix { $0 != " " })
        self.fromSentinel = fromSentinel
    }

    public var description: String { message }

    /// The server refused this client's credentials or their rights: no password where one is
    /// needed (`NOAUTH`, or a command too long for a client that has not authenticated, which
    /// Redis answers with a protocol error and a closed connection), a wrong one (`WRONGPASS`),
    /// or an ACL user without the command (`NOPERM`). A configuration error, not a passing one.
    public var refusesCredentials: Bool {
        ["NOAUTH", "WRONGPASS", "NOPERM"].contains(code) || (code == "ERR" && message.contains("unauthenticated"))
    }

    /// The server refused the database of the URL (`SELECT`: a number past its `databases`, or
    /// a cluster, which has only database 0). A configuration error, not a passing one.
    public var refusesDatabase: Bool {
        code == "ERR" && (message.contains("DB index is out of range") || message.contains("SELECT is not allowed"))
    }

    /// For a credential refusal: which settings to check, in `session-fcgi`'s option names.
    public var credentialAdvice: String {
        fromSentinel
            ? "the Sentinels need their own password: check --redis-sentinel-password-file (and --redis-sentinel-user for an ACL user) against the Sentinels' requirepass or ACL"
            : "check --redis-password-file and the user in --redis-url against Redis's requirepass or ACL"
    }
}
