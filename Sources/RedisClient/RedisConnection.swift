import CHiredis
import Glibc

/// A blocking connection to one Redis server over hiredis.
///
/// Thread rules: not thread-safe and deliberately not `Sendable`. Create it on the thread that
/// uses it and keep it there (one per worker thread).
///
/// Lifecycle: the connection is made lazily on the first command. After any I/O or protocol
/// error the hiredis context is freed at once (hiredis contexts cannot be reused after an error)
/// and the next command connects anew, so the owner recovers by itself when Redis comes back.
/// A command is never retried after it may have reached the server.
public final class RedisConnection {
    public let endpoint: RedisEndpoint
    private var context: UnsafeMutablePointer<redisContext>?
    /// Monotonic time of the last reply, in nanoseconds.
    private var lastUsed: UInt64 = 0
    /// A connection idle for longer than this is checked before reuse (one `poll`); a busy
    /// connection is not, which keeps a syscall off the hot path.
    public var idleCheckNanoseconds: UInt64 = 100_000_000
    /// A command buffer lent to `run(_:keyCount:_:)` and given back, so its storage is reused.
    private var scratch = RedisCommand(reservingBytes: 256, arguments: 12)
    /// How many connections this object has made, for tests and metrics.
    public private(set) var connectionsOpened = 0

    public init(endpoint: RedisEndpoint) {
        self.endpoint = endpoint
    }

    deinit {
        if let context { redisFree(context) }
    }

    /// Whether a live context is held (it may still turn out dead on next use).
    public var isConnected: Bool { context != nil }

    /// Sends one command and waits for its reply. Server error replies come back as
    /// `.error(…)`; only connection-level failures throw.
    public func send(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        guard command.count > 0 else { throw .invalidCommand }
        let context = try usableContext()
        let raw: UnsafeMutableRawPointer? = Self.withArgv(command) { argc, argv, lengths in
            redisCommandArgv(context, argc, argv, lengths)
        } ?? nil
        guard let raw else { throw dropContext() }
        defer { freeReplyObject(raw) }
        return RedisReply(copying: raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Sends several commands in one write and reads all their replies: one round trip.
    public func pipeline(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        guard commands.allSatisfy({ $0.count > 0 }) else { throw .invalidCommand }
        let context = try usableContext()
        for command in commands {
            let status = Self.withArgv(command) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            guard status == REDIS_OK else { throw dropContext() }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw dropContext() }
            replies.append(RedisReply(copying: raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
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
        if let context { redisFree(context) }
        context = nil
    }

    // MARK: - Context management

    /// The current context if it is still healthy, or a freshly connected one.
    private func usableContext() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        if let context {
            let now = Self.monotonicNanoseconds()
            if now &- lastUsed < idleCheckNanoseconds || Self.isIdleAndHealthy(context) {
                lastUsed = now
                return context
            }
            close()
        }
        let fresh = try connect()
        context = fresh
        lastUsed = Self.monotonicNanoseconds()
        connectionsOpened += 1
        return fresh
    }

    /// An idle connection should have nothing to read. Readable or hung up means the server
    /// closed it (restart, timeout, `CLIENT KILL`) while we were not looking: reconnect rather
    /// than fail the next request. One zero-timeout `poll`, no I/O.
    private static func isIdleAndHealthy(_ context: UnsafeMutablePointer<redisContext>) -> Bool {
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, 0)
        return ready == 0
    }

    private func connect() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        let connectTimeout = Self.timeval(milliseconds: endpoint.connectTimeoutMilliseconds)
        let created: UnsafeMutablePointer<redisContext>?
        switch endpoint.address {
        case .tcp(let host, let port):
            created = redisConnectWithTimeout(host, Int32(port), connectTimeout)
        case .unix(let path):
            created = redisConnectUnixWithTimeout(path, connectTimeout)
        }
        guard let created else { throw .connectFailed("cannot allocate a hiredis context") }
        if created.pointee.err != 0 {
            let message = Self.errorText(created)
            redisFree(created)
            throw .connectFailed(message)
        }
        if redisSetTimeout(created, Self.timeval(milliseconds: endpoint.commandTimeoutMilliseconds)) != REDIS_OK {
            let message = Self.errorText(created)
            redisFree(created)
            throw .connectFailed(message)
        }
        do {
            try Self.handshake(created, endpoint: endpoint)
        } catch {
            redisFree(created)
            throw error
        }
        return created
    }

    /// `AUTH` and `SELECT` when the endpoint asks for them.
    private static func handshake(_ context: UnsafeMutablePointer<redisContext>, endpoint: RedisEndpoint) throws(RedisError) {
        var commands: [RedisCommand] = []
        if let password = endpoint.password {
            if let username = endpoint.username {
                commands.append(RedisCommand("AUTH", username, password))
            } else {
                commands.append(RedisCommand("AUTH", password))
            }
        }
        if endpoint.database != 0 {
            commands.append(RedisCommand("SELECT", String(endpoint.database)))
        }
        for command in commands {
            let raw: UnsafeMutableRawPointer? = withArgv(command) { argc, argv, lengths in
                redisCommandArgv(context, argc, argv, lengths)
            } ?? nil
            guard let raw else { throw .connectFailed(errorText(context)) }
            let reply = RedisReply(copying: raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            if let error = reply.serverError { throw .server(error) }
        }
    }

    /// Frees the context after an error and describes the error.
    private func dropContext() -> RedisError {
        let savedErrno = errno
        guard let context else { return .connectionLost("no connection") }
        let error: RedisError
        if context.pointee.err == REDIS_ERR_IO && (savedErrno == EAGAIN || savedErrno == EWOULDBLOCK) {
            error = .timedOut
        } else {
            error = .connectionLost(Self.errorText(context))
        }
        close()
        return error
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    private static func timeval(milliseconds: Int) -> Glibc.timeval {
        Glibc.timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
    }

    /// Lends hiredis an argv view of `command` for the duration of `body`; `nil` for an empty command.
    private static func withArgv<Result>(
        _ command: RedisCommand,
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> Result
    ) -> Result? {
        command.bytes.withUnsafeBufferPointer { bytes -> Result? in
            command.lengths.withUnsafeBufferPointer { lengths -> Result? in
                withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: max(lengths.count, 1)) { argv -> Result? in
                    guard let argvBase = argv.baseAddress, let lengthBase = lengths.baseAddress, !lengths.isEmpty else {
                        return nil
                    }
                    // Zero-length arguments still need a valid pointer; point them at a constant.
                    let empty: StaticString = ""
                    let fallback = UnsafeRawPointer(empty.utf8Start)
                    let base = bytes.baseAddress.map { UnsafeRawPointer($0) } ?? fallback
                    var offset = 0
                    for (index, length) in lengths.enumerated() {
                        argv[index] = (length == 0 ? fallback : base + offset).assumingMemoryBound(to: CChar.self)
                        offset += length
                    }
                    return body(Int32(lengths.count), argvBase, lengthBase)
                }
            }
        }
    }
}
