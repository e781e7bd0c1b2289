import CFastCGI
import Glibc
import Synchronization

/// A threaded FastCGI server over libfcgi.
///
/// `FCGX_Init` runs once; each of `threads` workers owns one `FCGX_Request` (allocated once, so
/// its address never moves, as libfcgi requires) and one responder made by the factory on that
/// thread. The calling thread waits for SIGTERM or SIGINT, stops accepting, and waits up to the
/// grace period for requests in flight.
public final class FastCGIServer: Sendable {
    public let configuration: FastCGIServerConfiguration
    public let log: ServerLog
    /// Requests between accept and finish, for the shutdown drain. Atomics, not a lock: every
    /// worker touches these twice per request, and a contended lock showed up in profiles.
    private let inFlight = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)

    public init(configuration: FastCGIServerConfiguration, log: ServerLog) {
        self.configuration = configuration
        self.log = log
    }

    /// Serves until SIGTERM or SIGINT, then drains and returns.
    /// - Parameter makeResponder: called once on each worker thread.
    public func run(makeResponder: @escaping @Sendable () -> any FastCGIResponder) throws(FastCGIServerError) {
        signal(SIGPIPE, SIG_IGN)
        guard FCGX_Init() == 0 else { throw .initializationFailed }
        let listenDescriptor = try openListener()

        // Workers inherit this mask, so only the waiting thread below receives the signals.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

        let maxBody = configuration.maxBodyBytes
        for _ in 0..<max(1, configuration.threads) {
            try startThread { [self] in
                self.serve(listenDescriptor: listenDescriptor, maxBodyBytes: maxBody, responder: makeResponder())
            }
        }
        log.info("serving FastCGI on \(configuration.listen) with \(configuration.threads) threads")

        var received: Int32 = 0
        sigwait(&stopSignals, &received)
        log.info("signal \(received): stopping")
        drain(listenDescriptor: listenDescriptor)
    }

    // MARK: - Workers

    private func serve(listenDescriptor: Int32, maxBodyBytes: Int, responder: any FastCGIResponder) {
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        guard FCGX_InitRequest(request, listenDescriptor, 0) == 0 else {
            log.error("FCGX_InitRequest failed")
            return
        }
        var failures = 0
        // Reused for every response of this worker: serializing allocates nothing.
        var output = OutputBuffer()
        while !isStopping {
            guard FCGX_Accept_r(request) >= 0 else {
                if isStopping { break }
                failures += 1
                // Back off so a persistent accept error cannot spin a core.
                usleep(UInt32(min(failures, 100)) * 1000)
                continue
            }
            failures = 0
            inFlight.add(1, ordering: .relaxed)
            let incoming = Self.readRequest(request, maxBodyBytes: maxBodyBytes)
            let response = responder.respond(to: incoming)
            Self.write(response, to: request, buffer: &output)
            FCGX_Finish_r(request)
            inFlight.subtract(1, ordering: .releasing)
        }
    }

    private var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Copies params and body out of libfcgi's buffers (they die at `FCGX_Finish_r`).
    private static func readRequest(_ request: UnsafeMutablePointer<FCGX_Request>, maxBodyBytes: Int) -> FastCGIRequest {
        let params = request.pointee.envp.map { FastCGIParams(copyingEnvironment: $0) } ?? FastCGIParams()
        guard let lengthText = params["CONTENT_LENGTH"], !lengthText.isEmpty else {
            return FastCGIRequest(params: params)
        }
        guard lengthText.utf8.count <= 18, let length = Int(lengthText), length >= 0 else {
            discardBody(request)
            return FastCGIRequest(params: params, bodyProblem: .malformedLength)
        }
        if length == 0 { return FastCGIRequest(params: params) }
        guard length <= maxBodyBytes else {
            discardBody(request)
            return FastCGIRequest(params: params, bodyProblem: .tooLarge(limit: maxBodyBytes))
        }
        var body = [UInt8](repeating: 0, count: length)
        let read = body.withUnsafeMutableBufferPointer { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return base.withMemoryRebound(to: CChar.self, capacity: length) {
                Int(FCGX_GetStr($0, Int32(length), request.pointee.in))
            }
        }
        guard read == length else { return FastCGIRequest(params: params, bodyProblem: .truncated) }
        return FastCGIRequest(params: params, body: body)
    }

    /// Reads and drops the rest of the body so a kept connection stays in sync.
    private static func discardBody(_ request: UnsafeMutablePointer<FCGX_Request>) {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 16 * 1024) { buffer in
            guard let base = buffer.baseAddress else { return }
            while FCGX_GetStr(base, Int32(buffer.count), request.pointee.in) > 0 {}
        }
    }

    /// Serializes into the worker's reused buffer and hands libfcgi one piece.
    private static func write(_ response: FastCGIResponse, to request: UnsafeMutablePointer<FCGX_Request>, buffer: inout OutputBuffer) {
        buffer.removeAll()
        response.serialize(into: &buffer)
        let bytes = buffer.bytes
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        _ = FCGX_PutStr(base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), request.pointee.out)
    }

    // MARK: - Listening and shutdown

    private func openListener() throws(FastCGIServerError) -> Int32 {
        guard let path = configuration.listen.socketPath else {
            var accepting: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) == 0, accepting == 1 else {
                throw .noInheritedSocket
            }
            return 0
        }
        let descriptor = FCGX_OpenSocket(path, Int32(configuration.backlog))
        guard descriptor >= 0 else { throw .cannotListen(configuration.listen.description) }
        return descriptor
    }

    private func drain(listenDescriptor: Int32) {
        stopping.store(true, ordering: .relaxed)
        FCGX_ShutdownPending()
        // Wakes the threads blocked in accept(2); threads pinned to a kept nginx connection
        // are only waited for as long as they serve a request.
        shutdown(listenDescriptor, Int32(SHUT_RDWR))
        var waited = 0
        while inFlight.load(ordering: .acquiring) > 0 && waited < configuration.shutdownGraceMilliseconds {
            usleep(10_000)
            waited += 10
        }
        if case .unix(let path) = configuration.listen { unlink(path) }
        log.info("stopped")
    }

    private func startThread(_ body: @escaping @Sendable () -> Void) throws(FastCGIServerError) {
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, 512 * 1024)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, workerThreadEntry, box)
        if result != 0 {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            throw .cannotStartThread(result)
        }
    }
}

/// A closure carried across `pthread_create`.
private final class ThreadBody: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// The C entry point of every worker thread: a global function, not a closure, so it carries
/// no actor isolation (see FIELD-NOTES: closures from top-level code die with SIGILL).
private func workerThreadEntry(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let argument else { return nil }
    let box = Unmanaged<ThreadBody>.fromOpaque(argument).takeRetainedValue()
    box.body()
    return nil
}
