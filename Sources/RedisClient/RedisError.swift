/// Why a Redis call failed. `.connectFailed`, `.timedOut` and `.connectionLost` mean the
/// connection was dropped and will be replaced by a new one on the next call; `.server`,
/// `.unexpectedReply` and `.invalidCommand` leave a healthy connection in place.
public enum RedisError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The TCP or Unix connection could not be made (refused, unreachable, timed out).
    case connectFailed(String)
    /// The TLS handshake was refused for good: the server's certificate does not verify or name
    /// the host, or the server refused this client's certificate (or its absence). A
    /// configuration error, not an outage: retrying does not help.
    case tlsRefused(String)
    /// Reading or writing timed out (`commandTimeout`).
    case timedOut
    /// The connection broke during a command (reset, EOF, protocol error).
    case connectionLost(String)
    /// The server answered with an error (for example, `WRONGTYPE`), or refused `AUTH`/`SELECT`.
    case server(RedisServerError)
    /// The reply did not have the shape the caller expected.
    case unexpectedReply(String)
    /// A command with no arguments was given; nothing was sent.
    case invalidCommand

    public var description: String {
        switch self {
        case .connectFailed(let why): return "redis connect failed: \(why)"
        case .tlsRefused(let why): return "redis TLS refused: \(why)"
        case .timedOut: return "redis timed out"
        case .connectionLost(let why): return "redis connection lost: \(why)"
        case .server(let error): return "redis error: \(error.loggableMessage)"
        case .unexpectedReply(let why): return "unexpected redis reply: \(why)"
        case .invalidCommand: return "empty redis command"
        }
    }
}
