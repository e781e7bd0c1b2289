import FastCGIServer
import RedisClient
import SessionCore

/// Everything `session-fcgi` needs to run, parsed once from flags and environment.
public struct AppConfiguration: Equatable, Sendable {
    public var server = FastCGIServerConfiguration()
    public var redis = RedisEndpoint()
    /// Prefix of every session key in Redis (`sid_`).
    public var keyPrefix = "sid_"
    public var session = SessionConfiguration()
    /// `Retry-After` seconds sent with 503 answers.
    public var retryAfterSeconds = 1
    /// Largest `Cookie` header accepted, in bytes.
    public var maxCookieHeaderBytes = 8192
    /// Log file; `nil` logs to standard error (which spawn-fcgi points at /dev/null).
    public var logFile: String?
    public var logLevel: ServerLog.Level = .info

    public init() {}
}

/// A configuration value that was given but cannot be used.
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
