import CFastCGI
import CLinux
import Glibc
import Logging

/// A threaded FastCGI server over libfcgi.
///
/// `FCGX_Init` runs once. `threads` workers share one epoll set holding the listening socket
/// and every idle connection (see `ConnectionDispatcher`): a worker is tied to a connection
/// only while it serves a request from it, so idle, silent, half-sent or kept-alive
/// connections cost a descriptor, never a thread. Each worker owns `batchLimit` `FCGX_Request`s
/// and one responder made by the factory on its thread; `activeThreads` of them take requests
/// at once (`WorkerGate`), the others stand by for workers serving routes that may block. The calling thread closes connections past their timeouts, waits
/// for SIGTERM or SIGINT, then stops accepting, closes idle connections and waits up to the
/// grace period for requests in flight. SIGHUP calls the `onHangup` given to `run` on that
/// thread, without disturbing any request.
public final class FastCGIServer: Sendable {
    public let configuration: FastCGIServerConfiguration
    public let log: Logger
    /// Connection counters, readable at any time (for metrics).
    public let counters = ServerCounters()
    /// Requests per worker, summed by `requestsServed`.
    private let workerCounters: [WorkerCounters]

    public init(configuration: FastCGIServerConfiguration, log: Logger) {
        self.configuration = configuration
        self.log = log
        workerCounters = (0..<max(1, configuration.threads)).map { _ in WorkerCounters() }
    }

    /// Requests served so far by every worker.
    public var requestsServed: Int { workerCounters.reduce(0) { $0 + $1.requests.load(ordering: .relaxed) } }
    /// Batches served (see `FastCGIServerConfiguration.batchLimit`): requests ÷ batches is the
    /// mean number of requests a worker took at once.
    public var batchesServed: Int { workerCounters.reduce(0) { $0 + $1.batches.load(ordering: .relaxed) } }

    /// Serves until SIGTERM or SIGINT, then drains and returns.
    /// - Parameter onHangup: called on SIGHUP (reload configuration, reopen logs).
    /// - Parameter makeResponder: called once on each worker thread.
    public func run(onHangup: @escaping @Sendable () -> Void = {},
                    makeResponder: @escaping @Sendable () -> any FastCGIResponder) throws(FastCGIServerError) {
        signal(SIGPIPE, SIG_IGN)
        guard FCGX_Init() == 0 else { throw .initializationFailed }
        if !LibfcgiReadAhead.isMeasurable {
            log.warning("this libfcgi's input buffer cannot be read (not 2.4.2's layout): a direct FastCGI peer that sends its next request just after a request may wait for the idle timeout instead of being closed")
        }
        let listener = try Listener(configuration.listen, backlog: configuration.backlog)
        let dispatcher = try ConnectionDispatcher(configuration: configuration, listener: listener, log: log, counters: counters)

        // Workers inherit this mask, so only the waiting thread below receives the signals.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGHUP)
        sigaddset(&stopSignals, ConnectionDispatcher.wakeSignal)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

        let threads = workerCounters.count
        // glibc gives threads that allocate at the same time arenas of their own, up to eight
        // per core, and each keeps up to its trim threshold of freed memory resident: with
        // requests read in batches, about 200 KiB per worker. Only the active workers allocate
        // at once on the hot path, so they get an arena each (and the server thread one);
        // standby workers serving slow routes share them. An operator's own MALLOC_ARENA_MAX or
        // GLIBC_TUNABLES wins.
        if getenv("MALLOC_ARENA_MAX") == nil && getenv("GLIBC_TUNABLES") == nil {
            mallopt(M_ARENA_MAX, Int32(clamping: min(max(1, configuration.activeThreads), threads) + 1))
        }
        for counters in workerCounters {
            try WorkerThread.start { [dispatcher] in
                var worker = Worker(dispatcher: dispatcher, responder: makeResponder(), counters: counters)
                worker.run()
            }
        }
        let peers = dispatcher.peers.map { "peers \($0)" } ?? "Unix socket (no peer filter)"
        log.info("serving FastCGI on \(configuration.listen) with \(threads) threads (\(min(configuration.activeThreads, threads)) active, up to \(configuration.batchLimit) requests at once each); at most \(dispatcher.maxConnections) connections; \(peers)")

        let interval = dispatcher.sweepIntervalMilliseconds
        var received: Int32 = -1
        var lastSweep = MonotonicClock.now()
        while received < 0 || received == SIGHUP || received == ConnectionDispatcher.wakeSignal {
            if received == SIGHUP {
                log.info("SIGHUP: reloading")
                onHangup()
            }
            // Parked connections (part of a request, see `park`) are looked at when due, the
            // rest of the table every `interval`.
            let now = MonotonicClock.now()
            let untilParked = dispatcher.sweepParked(now: now)
            if Int32(bitPattern: now &- lastSweep) >= Int32(interval) {
                dispatcher.sweep(now: now)
                lastSweep = now
            }
            let wait = min(interval, max(1, untilParked ?? interval))
            var tick = timespec(tv_sec: wait / 1000, tv_nsec: (wait % 1000) * 1_000_000)
            received = sigtimedwait(&stopSignals, nil, &tick)
        }
        log.info("signal \(received): stopping")
        let drained = dispatcher.drain(graceMilliseconds: configuration.shutdownGraceMilliseconds)
        log.info("\(dispatcher.counters.summary(requests: requestsServed))")
        log.info(drained ? "stopped" : "stopped with requests still in progress after the grace period")
    }

}
