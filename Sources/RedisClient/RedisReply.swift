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

    /// The message as it may be logged (`loggableMessage`).
    public var description: String { loggableMessage }

    /// The message without what Redis quotes of the command it refused, which may be a
    /// session id: an unknown or renamed command's arguments ("…, with args beginning with:
    /// 'sid_<id>' …") and, from Redis 7.2, the key an ACL refuses. Quoted words longer than a
    /// command name are left out too. Logs, `check-config` and error descriptions use this;
    /// `message` stays whole for the code that reads it.
    public var loggableMessage: String {
        var text = Substring(message)
        var tail = ""
        if let echoed = message.firstRange(of: ", with args beginning with:") {
            text = message[..<echoed.lowerBound]
            tail = ", with its arguments left out"
        }
        // A quote opens after a space or a bracket (not inside a word: "can't") and closes before
        // a space, punctuation or the end.
        var result = ""
        var quoted: String?
        let characters = Array(text)
        for (index, character) in characters.enumerated() {
            let before = index > 0 ? characters[index - 1] : " "
            let after = index + 1 < characters.count ? characters[index + 1] : " "
            if character == "'", quoted == nil, before.isWhitespace || "([{:,=".contains(before) {
                quoted = ""
            } else if character == "'", let word = quoted, !(after.isLetter || after.isNumber) {
                result += word.count > Self.longestLoggedQuote ? "'…'" : "'\(word)'"
                quoted = nil
            } else if quoted != nil {
                quoted?.append(character)
            } else {
                result.append(character)
            }
        }
        if let word = quoted { result += word.count > Self.longestLoggedQuote ? "'…" : "'\(word)" }
        return result + tail
    }

    /// Longer quoted words are taken for keys or values (a session key is 36 characters).
    static var longestLoggedQuote: Int { 24 }

    /// The server refused this client's credentials or their rights: no password where one is
    /// needed (`NOAUTH`, or a command too long for a client that has not authenticated, which
    /// Redis answers with a protocol error and a closed connection), a wrong one (`WRONGPASS`),
    /// or an ACL user without the command (`NOPERM`). A configuration error, not a passing one.
    public var refusesCredentials: Bool {
        ["NOAUTH", "WRONGPASS", "NOPERM"].contains(code) || (code == "ERR" && message.contains("unauthenticated"))
    }

    /// The server does not have the command (renamed or disabled), or this node is not the
    /// kind the URL says (a Sentinel asked for data, a data node asked as a Sentinel).
    public var isUnknownCommand: Bool {
        code == "ERR" && (message.hasPrefix("ERR unknown command") || message.hasPrefix("ERR unknown subcommand"))
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
