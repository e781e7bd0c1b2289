import CFastCGI
import Glibc

/// A threaded FastCGI server over libfcgi.
///
/// `FCGX_Init` runs once. `threads` workers share one epoll set holding the listening socket
/// and every idle connection (see `ConnectionDispatcher`): a worker is tied to a connection
/// only while it serves a request from it, so idle, silent, half-sent or kept-alive
/// connections cost a descriptor, never a thread. Each worker owns one `FCGX_Request` and one responder made by
/// the factory on its thread. The calling thread closes connections past their timeouts, waits
/// for SIGTERM or SIGINT, then stops accepting, closes idle connections and waits up to the
/// grace period for requests in flight.
public final class FastCGIServer: Sendable {
    public let configuration: FastCGIServerConfiguration
    public let log: ServerLog

    public init(configuration: FastCGIServerConfiguration, log: ServerLog) {
        self.configuration = configuration
        self.log = log
    }

    /// Serves until SIGTERM or SIGINT, then drains and returns.
    /// - Parameter makeResponder: called once on each worker thread.
    public func run(makeResponder: @escaping @Sendable () -> any FastCGIResponder) throws(FastCGIServerError) {
        signal(SIGPIPE, SIG_IGN)
        guard FCGX_Init() == 0 else { throw .initializationFailed }
        let listener = try Listener(configuration.listen, backlog: configuration.backlog)
        let dispatcher = try ConnectionDispatcher(configuration: configuration, listener: listener, log: log)

        // Workers inherit this mask, so only the waiting thread below receives the signals.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

        let threads = max(1, configuration.threads)
        let workerCounters = (0..<threads).map { _ in WorkerCounters() }
        for counters in workerCounters {
            try WorkerThread.start { [dispatcher] in
                var worker = Worker(dispatcher: dispatcher, responder: makeResponder(), counters: counters)
                worker.run()
            }
        }
        let peers = dispatcher.peers.map { "peers \($0)" } ?? "Unix socket (no peer filter)"
        log.info("serving FastCGI on \(configuration.listen) with \(threads) threads; at most \(dispatcher.maxConnections) connections; \(peers)")

        let interval = dispatcher.sweepIntervalMilliseconds
        var tick = timespec(tv_sec: interval / 1000, tv_nsec: (interval % 1000) * 1_000_000)
        var received: Int32 = -1
        while received < 0 {
            received = sigtimedwait(&stopSignals, nil, &tick)
            dispatcher.sweep()
        }
        log.info("signal \(received): stopping")
        let drained = dispatcher.drain(graceMilliseconds: configuration.shutdownGraceMilliseconds)
        let requests = workerCounters.reduce(0) { $0 + $1.requests.load(ordering: .relaxed) }
        log.info("\(dispatcher.counters.summary(requests: requests))")
        log.info(drained ? "stopped" : "stopped with requests still in progress after the grace period")
    }
}
