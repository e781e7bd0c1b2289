/// How the FastCGI server listens, how much it accepts, and how long it waits.
///
/// Connections are not tied to threads: every idle connection waits in one epoll set, and a
/// worker takes a connection only when a whole request has arrived on it (on TCP; see
/// `ioTimeoutMilliseconds` for the exceptions), serves that one request, and hands the
/// connection back. The limits below bound what idle, silent or slow peers cost: a descriptor
/// each, for a bounded time, and never a thread.
public struct FastCGIServerConfiguration: Equatable, Sendable {
    /// Where to accept connections (`.inherited`: fd 0, as spawn-fcgi hands it over; TCP or
    /// Unix socket, told apart with getsockname(2)).
    public var listen: ListenAddress
    /// Worker threads, each with its own `FCGX_Request`s and responder (so its own Redis
    /// connection). A worker is busy only while it serves requests, so this bounds requests
    /// in progress, not connections: size it for peak concurrent slow requests (logins, pages;
    /// a worker holds at most one of them at a time) plus `activeThreads`. Idle nginx
    /// keep-alive connections cost no thread.
    public var threads: Int
    /// Most workers taking requests at once (waiting in epoll, or answering a batch's prompt
    /// requests); at most `threads`. The other workers stand by, each ready to take over from a
    /// worker that serves a request which may block (`FastCGIResponder.respond(to:)`), so slow
    /// routes never leave the hot ones without a worker while fewer than `threads` of them run
    /// at once. Few active workers make bigger batches: requests that arrive while they are
    /// busy are taken together (see `WorkerGate`).
    public var activeThreads: Int
    /// Most requests a worker takes at once: every connection epoll reports ready, up to this
    /// many, is read before any is answered, so that the responder can ask the store for all of
    /// them in one round trip (`FastCGIResponder.respondPromptly`). Under load this saves
    /// a wake-up and a store round trip per request; when requests come one at a time, each
    /// worker still takes one. 1 serves one request per wake-up.
    public var batchLimit: Int
    /// `listen(2)` backlog when the server binds the socket itself.
    public var backlog: Int
    /// Largest request body read into memory; larger declared bodies are discarded.
    public var maxBodyBytes: Int
    /// The largest `maxBodyBytes` honoured: every request is checked whole before libfcgi
    /// reads it, so it must fit what the kernel buffers for one connection.
    public static let maxBodyBytesLimit = 64 * 1024
    /// How long to wait for in-flight requests after SIGTERM/SIGINT. Idle connections are
    /// closed at once; the process exits as soon as no connection is left, or after this.
    public var shutdownGraceMilliseconds: Int
    /// A new connection that has not sent a whole request within this time is closed (silent
    /// or half-sent connections cost a descriptor and nothing else until then). nginx sends its
    /// request right after connecting.
    public var firstRequestTimeoutMilliseconds: Int
    /// A kept connection (FCGI_KEEP_CONN) without a whole next request for this long is closed. Keep
    /// it above nginx's upstream `keepalive_timeout` (60 s in our template) so that nginx, not
    /// the instance, closes idle connections: a request nginx sends just as the instance closes
    /// would otherwise fail and be retried.
    public var idleConnectionTimeoutSeconds: Int
    /// Most connections open at once (idle, waiting or being served). A connection beyond it
    /// is closed as soon as it is accepted. `nil`: min(open-file limit − 64 − 2 × threads, 4096),
    /// computed at start (see `effectiveMaxConnections`).
    public var maxConnections: Int?
    /// Bound on each read and each write of a request in progress (SO_RCVTIMEO, SO_SNDTIMEO):
    /// a peer that stops reading its response loses the connection after this. On TCP a worker
    /// reads only requests that have fully arrived, so reads wait only for requests larger than
    /// 128 KiB (handed over once that much is in) and on Unix sockets (whose peers the file
    /// permissions admit). It bounds each system call, not the whole request.
    public var ioTimeoutMilliseconds: Int
    /// TCP peers allowed to connect (`FCGI_WEB_SERVER_ADDRS`). `nil`: loopback only
    /// (127.0.0.0/8 and ::1). Not applied to Unix sockets: their file permissions decide.
    public var allowedPeers: AllowedPeers?

    public init(
        listen: ListenAddress = .inherited, threads: Int = 8, activeThreads: Int = 2, batchLimit: Int = 16, backlog: Int = 1024,
        maxBodyBytes: Int = 64 * 1024, shutdownGraceMilliseconds: Int = 5000,
        firstRequestTimeoutMilliseconds: Int = 5000, idleConnectionTimeoutSeconds: Int = 75,
        maxConnections: Int? = nil, ioTimeoutMilliseconds: Int = 10_000, allowedPeers: AllowedPeers? = nil
    ) {
        self.listen = listen
        self.threads = threads
        self.activeThreads = activeThreads
        self.batchLimit = batchLimit
        self.backlog = backlog
        self.maxBodyBytes = maxBodyBytes
        self.shutdownGraceMilliseconds = shutdownGraceMilliseconds
        self.firstRequestTimeoutMilliseconds = firstRequestTimeoutMilliseconds
        self.idleConnectionTimeoutSeconds = idleConnectionTimeoutSeconds
        self.maxConnections = maxConnections
        self.ioTimeoutMilliseconds = ioTimeoutMilliseconds
        self.allowedPeers = allowedPeers
    }

    /// Descriptors kept back from the connection limit for everything else the process opens
    /// (a Redis connection per worker, the log, epoll, the listener, reconnects). Connections a
    /// worker holds in a batch are connections like any other: they count against the limit.
    public var reservedDescriptors: Int { 64 + 2 * max(1, threads) }

    /// `maxConnections`, or its default for an open-file limit of `openFileLimit`.
    public func effectiveMaxConnections(openFileLimit: Int) -> Int {
        if let maxConnections { return max(1, maxConnections) }
        return max(1, min(openFileLimit - reservedDescriptors, 4096))
    }
}

/// Why the server could not start.
public enum FastCGIServerError: Error, Equatable, Sendable, CustomStringConvertible {
    case initializationFailed
    case noInheritedSocket
    case cannotListen(String)
    case cannotStartThread(Int32)
    case cannotPoll(Int32)

    public var description: String {
        switch self {
        case .initializationFailed: return "FCGX_Init failed"
        case .noInheritedSocket: return "file descriptor 0 is not a listening socket: start under spawn-fcgi, or pass --listen"
        case .cannotListen(let address): return "cannot listen on \(address)"
        case .cannotStartThread(let code): return "cannot start a worker thread (error \(code))"
        case .cannotPoll(let code): return "cannot set up epoll (error \(code))"
        }
    }
}
