/// How the FastCGI server listens and how much it accepts.
public struct FastCGIServerConfiguration: Equatable, Sendable {
    /// Where to accept connections (`.inherited`: fd 0, as spawn-fcgi hands it over).
    public var listen: ListenAddress
    /// Worker threads, each with its own `FCGX_Request` and responder. With nginx keep-alive a
    /// kept connection pins a thread, so size this ≥ nginx workers × upstream `keepalive` plus
    /// peak concurrency.
    public var threads: Int
    /// `listen(2)` backlog when the server binds the socket itself.
    public var backlog: Int
    /// Largest request body read into memory; larger declared bodies are discarded.
    public var maxBodyBytes: Int
    /// How long to wait for in-flight requests after SIGTERM/SIGINT.
    public var shutdownGraceMilliseconds: Int

    public init(
        listen: ListenAddress = .inherited, threads: Int = 64, backlog: Int = 1024,
        maxBodyBytes: Int = 64 * 1024, shutdownGraceMilliseconds: Int = 5000
    ) {
        self.listen = listen
        self.threads = threads
        self.backlog = backlog
        self.maxBodyBytes = maxBodyBytes
        self.shutdownGraceMilliseconds = shutdownGraceMilliseconds
    }
}

/// Why the server could not start.
public enum FastCGIServerError: Error, Equatable, Sendable, CustomStringConvertible {
    case initializationFailed
    case noInheritedSocket
    case cannotListen(String)
    case cannotStartThread(Int32)

    public var description: String {
        switch self {
        case .initializationFailed: return "FCGX_Init failed"
        case .noInheritedSocket: return "file descriptor 0 is not a listening socket: start under spawn-fcgi, or pass --listen"
        case .cannotListen(let address): return "cannot listen on \(address)"
        case .cannotStartThread(let code): return "cannot start a worker thread (error \(code))"
        }
    }
}
