import CHiredis
import Glibc

/// A blocking connection to one Redis server: our own transport (TCP, Unix socket or TLS) under
/// hiredis's reply reader, with RESP commands written straight from `RedisCommand`'s buffer.
///
/// Thread rules: not thread-safe and deliberately not `Sendable`. Create it on the thread that
/// uses it and keep it there (one per worker thread and server).
///
/// Lifecycle: the connection is made lazily on the first command. After any I/O or protocol
/// error the transport and reader are dropped at once and the next command connects anew, so
/// the owner recovers by itself when Redis comes back. After two failed connects in a row
/// further attempts back off (50 ms, doubling, at most 1 s) so an outage answers fast instead
/// of every request waiting for a connect timeout. A command is never retried after it may
/// have reached the server.
public final class RedisConnection {
    public let endpoint: RedisEndpoint
    private let tlsContext: TLSContext?
    private var transport: (any RedisTransport)?
    private var reader: UnsafeMutablePointer<redisReader>?
    /// Where `reader` builds replies (it outlives every reader made for it).
    private let replies = RedisReplyBuilder()
    /// Monotonic time of the last reply, in nanoseconds.
    private var lastUsed: UInt64 = 0
    /// A connection idle for longer than this is checked before reuse (one `poll`); a busy
    /// connection is not, which keeps a syscall off the hot path.
    public var idleCheckNanoseconds: UInt64 = 100_000_000
    /// Commands are serialized here before one write; reused, shrunk back after large use.
    private var output = RESPBuffer()
    private var input = [UInt8](repeating: 0, count: 16 * 1024)
    /// A command buffer lent to `run(_:keyCount:_:)` and given back, so its storage is reused.
    private var scratch = RedisCommand(reservingBytes: 256, arguments: 12)
    /// When a failed connect may be tried again, and the current pause.
    private var nextConnectAllowed: UInt64 = 0
    private var backoffMilliseconds = 0
    private var failedConnects = 0
    /// Why the last connect failed, repeated while connects back off.
    private var lastConnectFailure = ""
    /// Whether the last failed connect was Redis refusing the credentials (counted apart: an
    /// operator must tell a wrong password from Redis being down).
    private var lastConnectRefusedCredentials = false
    /// How many connections this object has made, for tests and metrics.
    public private(set) var connectionsOpened = 0
    /// Where round trips, failures and reconnects are counted (the owning client's counters).
    let counters: RedisClientCounters
    /// Whether commands on this connection count as round trips (not for a Sentinel).
    private let countsRoundTrips: Bool
    /// Set while a new connection's handshake runs: its failure is counted once, as a connect
    /// failure, by `usableTransport`.
    private var handshaking = false
    /// Whether the current connection has answered anything yet (a TLS-only port closes a
    /// plain connection before any answer).
    private var hasAnswered = false

    /// A connection to `endpoint`. TLS endpoints get their own TLS context unless one is given
    /// (a `RedisClient` shares one among its connections).
    public convenience init(endpoint: RedisEndpoint) {
        self.init(endpoint: endpoint, tlsContext: nil, counters: RedisClientCounters())
    }

    init(endpoint: RedisEndpoint, tlsContext: TLSContext?, counters: RedisClientCounters, countsRoundTrips: Bool = true) {
        self.endpoint = endpoint
        self.tlsContext = tlsContext
        self.counters = counters
        self.countsRoundTrips = countsRoundTrips
    }

    deinit { close() }

    /// Whether a live transport is held (it may still turn out dead on next use).
    public var isConnected: Bool { transport != nil }

    /// Sends one command and waits for its reply. Server error replies come back as
    /// `.error(…)`; only connection-level failures throw.
    public func send(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        guard command.count > 0 else { throw .invalidCommand }
        try write { output in output.append(command) }
        return try readReply()
    }

    /// Sends several commands in one write and reads all their replies: one round trip.
    public func pipeline(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        guard commands.allSatisfy({ $0.count > 0 }) else { throw .invalidCommand }
        try write(commands)
        return try readReplies(commands.count)
    }

    /// Writes `commands` in one write without reading (the first half of a pipeline spread
    /// over several servers: write to all, then read from each).
    func write(_ commands: [RedisCommand]) throws(RedisError) {
        try write { output in
            for command in commands { output.append(command) }
        }
    }

    /// One write of what `serialize` puts in the reused output buffer.
    private func write(_ serialize: (inout RESPBuffer) -> Void) throws(RedisError) {
        let transport = try usableTransport()
        output.removeAll()
        serialize(&output)
        let written = Result { () throws(RedisError) in try transport.writeAll(output.bytes) }
        // Back to the usual size after an unusually large command.
        output.removeAll()
        if case .failure(let error) = written { throw drop(error) }
        if countsRoundTrips { RedisClientCounters.bump(counters.roundTrips) }
    }

    /// Reads `count` replies of commands written before.
    func readReplies(_ count: Int) throws(RedisError) -> [RedisReply] {
        var replies: [RedisReply] = []
        replies.reserveCapacity(count)
        for _ in 0..<count { replies.append(try readReply()) }
        return replies
    }

    func takeScratchCommand() -> RedisCommand {
        var command = scratch
        scratch = RedisCommand()
        command.removeAll()
        return command
    }

    func returnScratchCommand(_ command: RedisCommand) {
        scratch = command
    }

    /// Closes the connection; the next command opens a new one.
    public func close() {
        transport?.close()
        transport = nil
        if let reader { redisReaderFree(reader) }
        reader = nil
    }

    // MARK: - Reading

    private func readReply() throws(RedisError) -> RedisReply {
        guard let transport, let reader else { throw .connectionLost("no connection") }
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
                throw drop(.connectionLost("protocol error: \(Self.readerError(reader))"))
            }
            if raw != nil {
                guard let reply = replies.takeReply() else { throw drop(.connectionLost("protocol error: a reply without a value")) }
                lastUsed = Deadline.now()
                hasAnswered = true
                if case .error(let error) = reply, !Self.expectedErrorCodes.contains(error.code) {
                    if error.refusesCredentials {
                        RedisClientCounters.bump(counters.credentialRefusals)
                    } else {
                        RedisClientCounters.bump(counters.serverErrors)
                    }
                }
                return reply
            }
            let read = input.withUnsafeMutableBytes { buffer in Result { () throws(RedisError) in try transport.read(into: buffer) } }
            let count: Int
            switch read {
            case .success(let bytes): count = bytes
            case .failure(let error):
                if !hasAnswered, endpoint.tls == nil, case .connectionLost(let why) = error {
                    throw drop(.connectionLost("\(why) (if this port speaks TLS, use a rediss:// URL)"))
                }
                throw drop(error)
            }
            let fed = input.withUnsafeBytes { bytes in
                redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), count)
            }
            guard fed == REDIS_OK else { throw drop(.connectionLost("reader refused input")) }
        }
    }

    /// Error replies that are part of normal operation, counted by the client where it acts on
    /// them (redirections, cluster retries, script reloads) rather than as server errors.
    static let expectedErrorCodes: Set<String> = ["MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "NOSCRIPT"]

    // MARK: - Connecting

    /// Whether the next command would go over the connection held now, without reconnecting:
    /// a transport is held and, if it has been idle, it is still healthy (checked here, and
    /// closed when it is not).
    func hasUsableTransport() -> Bool {
        guard let transport else { return false }
        let now = Deadline.now()
        if now &- lastUsed < idleCheckNanoseconds || transport.isIdleAndHealthy() {
            lastUsed = now
            return true
        }
        close()
        return false
    }

    /// The current transport if it is still healthy, or a freshly connected one.
    private func usableTransport() throws(RedisError) -> any RedisTransport {
        if hasUsableTransport(), let transport { return transport }
        let now = Deadline.now()
        guard now >= nextConnectAllowed else {
            if lastConnectRefusedCredentials {
                RedisClientCounters.bump(counters.credentialRefusals)
            } else {
                RedisClientCounters.bump(counters.connectFailures)
            }
            throw .connectFailed("\(endpoint.address): unreachable moments ago (\(lastConnectFailure)), retrying in at most \(backoffMilliseconds) ms")
        }
        do throws(RedisError) {
            let fresh = try connect()
            backoffMilliseconds = 0
            failedConnects = 0
            nextConnectAllowed = 0
            return fresh
        } catch {
            // (A refused AUTH or SELECT was counted as the error reply it is.)
            counters.count(error)
            lastConnectRefusedCredentials = false
            if case .server(let refusal) = error, refusal.refusesCredentials { lastConnectRefusedCredentials = true }
            failedConnects += 1
            if case .connectFailed(let why) = error { lastConnectFailure = why } else { lastConnectFailure = error.description }
            if failedConnects >= 2 {
                backoffMilliseconds = min(1000, max(50, backoffMilliseconds * 2))
                nextConnectAllowed = Deadline.now() &+ UInt64(backoffMilliseconds) &* 1_000_000
            }
            throw error
        }
    }

    private func connect() throws(RedisError) -> any RedisTransport {
        let socket = try SocketTransport.connect(endpoint.address, connectTimeoutMilliseconds: endpoint.connectTimeoutMilliseconds,
                                                 ioTimeoutMilliseconds: endpoint.commandTimeoutMilliseconds)
        let fresh: any RedisTransport
        if let tls = endpoint.tls {
            guard case .tcp(let host, _) = endpoint.address else {
                socket.close()
                throw .connectFailed("TLS needs a TCP address")
            }
            let context: TLSContext
            if let shared = tlsContext { context = shared } else { context = try TLSContext(tls) }
            fresh = try TLSTransport(socket: socket, context: context, host: host)
        } else {
            fresh = socket
        }
        guard let reader = replies.makeReader() else {
            fresh.close()
            throw .connectFailed("cannot allocate a reply reader")
        }
        transport = fresh
        self.reader = reader
        hasAnswered = false
        lastUsed = Deadline.now()
        connectionsOpened += 1
        handshaking = true
        defer { handshaking = false }
        do throws(RedisError) {
            try handshake()
            if connectionsOpened > 1 { RedisClientCounters.bump(counters.reconnects) }
        } catch {
            close()
            if endpoint.tls != nil, case .connectionLost(let why) = error {
                // No alert came (that would be .tlsRefused): a refused client certificate, or a
                // server that went away; either way not proof of a configuration error.
                throw .connectFailed("TLS: the server ended the connection right after the handshake; it may require a client "
                                     + "certificate or refuse this one (\(why))")
            }
            throw error.asConnectFailure
        }
        return fresh
    }

    /// `AUTH` and `SELECT` when the endpoint asks for them, in one round trip. Over TLS there is
    /// always one round trip (a `PING` if nothing else): with TLS 1.3 the server judges the client
    /// certificate after our side of the handshake has completed, so a refusal would otherwise
    /// surface as a lost connection in the middle of the first real command.
    private func handshake() throws(RedisError) {
        var commands: [RedisCommand] = []
        if let password = endpoint.loginPassword {
            commands.append(endpoint.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        if endpoint.database != 0 { commands.append(RedisCommand("SELECT", String(endpoint.database))) }
        if commands.isEmpty && endpoint.tls != nil { commands.append(RedisCommand("PING")) }
        guard !commands.isEmpty, let transport else { return }
        output.removeAll()
        for command in commands { output.append(command) }
        try transport.writeAll(output.bytes)
        if countsRoundTrips { RedisClientCounters.bump(counters.roundTrips) }
        for _ in commands {
            if let error = try readReply().serverError { throw .server(error) }
        }
    }

    /// Drops the transport after an error, counts it, and returns it.
    private func drop(_ error: RedisError) -> RedisError {
        close()
        if !handshaking { counters.count(error) }
        return error
    }

    private static func readerError(_ reader: UnsafeMutablePointer<redisReader>) -> String {
        withUnsafeBytes(of: reader.pointee.errstr) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

extension RedisError {
    /// An error during connect or handshake, as the caller should see it: it never reached a
    /// command, so it is a connect failure (a refused `AUTH` stays a server error).
    var asConnectFailure: RedisError {
        switch self {
        case .timedOut: return .connectFailed("timed out during the handshake")
        case .connectionLost(let why): return .connectFailed(why)
        default: return self
        }
    }
}
