import CLinux
import Glibc
import Logging
import Synchronization

/// Hands connections to workers only when a request has arrived on them.
///
/// One epoll set, shared by every worker, holds the listening socket and every idle
/// connection, each registered `EPOLLONESHOT`: an event wakes exactly one worker and disarms
/// its descriptor until that worker re-arms it, so the kernel is the queue and no dispatcher
/// thread sits between a request and its worker. A worker woken on the listener accepts until
/// EAGAIN and re-arms it; a worker woken on a connection serves one request and hands the
/// connection back (or closes it). It first peeks at the waiting bytes: a request that has not
/// fully arrived goes back into epoll with SO_RCVLOWAT raised to the rest (`waitForRest`, TCP)
/// or is parked for the sweeper to look at again (`park`: Unix sockets, whose epoll ignores the
/// low-water mark, and TCP connections the kernel reports readable short of it), instead of
/// blocking the worker; libfcgi only ever reads whole requests whose every record was checked.
/// `ConnectionTable` makes each hand-off a compare-and-swap, so the sweeper (the server's main
/// thread) can close idle connections without racing a worker that is just being woken for
/// them.
final class ConnectionDispatcher: Sendable {
    let configuration: FastCGIServerConfiguration
    let log: Logger
    let table: ConnectionTable
    let listener: Listener
    /// Applied to TCP listeners only.
    let peers: AllowedPeers?
    let maxConnections: Int
    let counters: ServerCounters
    /// Permits of the workers that take requests (`configuration.activeThreads`).
    let gate: WorkerGate
    let stopping = Atomic<Bool>(false)
    let refusedLog: RateLimitedLog
    let overLimitLog: RateLimitedLog
    let failureLog: RateLimitedLog
    let acceptErrorLog: RateLimitedLog
    /// Connections held out of epoll with part of a request (see `park`).
    let parked = Mutex(ParkedConnections())
    private let epoll: Int32

    init(configuration: FastCGIServerConfiguration, listener: Listener, log: Logger, counters: ServerCounters) throws(FastCGIServerError) {
        self.counters = counters
        self.configuration = configuration
        self.listener = listener
        self.log = log
        gate = WorkerGate(permits: min(max(1, configuration.activeThreads), max(1, configuration.threads)))
        peers = listener.isTCP ? (configuration.allowedPeers ?? .loopback) : nil
        var limit = rlimit()
        let openFileLimit = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 1024
        maxConnections = configuration.effectiveMaxConnections(openFileLimit: openFileLimit)
        // Descriptor numbers are allocated lowest first, so with at most `maxConnections`
        // connections they stay below this unless the process holds many other descriptors;
        // a connection numbered beyond it is closed like one over the limit.
        table = ConnectionTable(capacity: min(openFileLimit, maxConnections + configuration.reservedDescriptors + 64))
        refusedLog = RateLimitedLog(log)
        overLimitLog = RateLimitedLog(log)
        failureLog = RateLimitedLog(log)
        acceptErrorLog = RateLimitedLog(log)
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw .cannotPoll(errno) }
        guard table.contains(listener.descriptor) else { throw .cannotListen("descriptor \(listener.descriptor) out of range") }
        let generation = table.register(listener.descriptor, kind: .listener, timed: false, deadline: 0)
        guard control(EPOLL_CTL_ADD, listener.descriptor, generation: generation) == 0 else { throw .cannotPoll(errno) }
        table.finishArming(listener.descriptor, generation: generation)
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    // MARK: - Events

    /// Blocks until descriptors are ready; returns how many of `events` were filled (up to
    /// `capacity`; 0 when interrupted). Each event is a descriptor this worker may claim.
    func nextEvents(_ events: UnsafeMutablePointer<epoll_event>, capacity: Int) -> Int {
        max(0, Int(epoll_wait(epoll, events, Int32(capacity), -1)))
    }

    /// Adds or re-arms `descriptor` for one readiness event carrying `generation`.
    func control(_ operation: Int32, _ descriptor: Int32, generation: UInt32) -> Int32 {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLONESHOT.rawValue
        event.data.u64 = ConnectionTable.token(descriptor, generation: generation)
        return epoll_ctl(epoll, operation, descriptor, &event)
    }

    // MARK: - Connections a worker holds

    /// The worker served a request on a connection that may be kept: back into epoll to wait
    /// for the next one (or closed, when stopping).
    func handBack(_ descriptor: Int32, generation: UInt32) {
        if isStopping {
            close(descriptor, generation: generation)
            return
        }
        let deadline = MonotonicClock.deadline(after: configuration.idleConnectionTimeoutSeconds * 1000)
        rearm(descriptor, generation: generation, deadline: deadline, served: true, raisedLowWater: false)
    }

    /// The worker claimed a connection but leaves its waiting request to another worker: back
    /// into epoll exactly as it was (same deadline and state), so it is reported again at once.
    func putBack(_ descriptor: Int32, slot: ConnectionSlot) {
        rearm(descriptor, generation: slot.generation, deadline: slot.deadline, served: slot.served, raisedLowWater: slot.raisedLowWater)
    }

    /// The worker found only part of a request: back into epoll, woken once `bytesNeeded` bytes
    /// are waiting (SO_RCVLOWAT, which epoll honours on TCP), with the deadline it had, so that
    /// a peer trickling bytes is still closed at its first-request or idle timeout. For a large
    /// request the receive buffer is first made big enough to hold all of it (`bufferBytes`):
    /// the kernel's own, sized for a stream being read, can close the window below the mark.
    func waitForRest(_ descriptor: Int32, slot: ConnectionSlot, bytesNeeded: Int, bufferBytes: Int) {
        if bytesNeeded > Self.ownBufferAbove {
            var size = Int32(clamping: bufferBytes)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var lowWater = Int32(clamping: bytesNeeded)
        guard setsockopt(descriptor, SOL_SOCKET, SO_RCVLOWAT, &lowWater, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            log.error("cannot set SO_RCVLOWAT on connection \(descriptor) (error \(errno)); closing it")
            close(descriptor, generation: slot.generation)
            return
        }
        // The kernel caps the mark (at half the receive buffer): below what is needed, epoll
        // would report the connection again at once, short of the request.
        if Self.lowWater(of: descriptor) < bytesNeeded {
            park(descriptor, slot: slot, recheckAt: bytesNeeded)
            return
        }
        rearm(descriptor, generation: slot.generation, deadline: partialRequestDeadline(slot), served: slot.served, raisedLowWater: true)
    }

    /// Partial requests larger than this get a receive buffer of their own size (`waitForRest`).
    static let ownBufferAbove = 32 * 1024

    private func rearm(_ descriptor: Int32, generation: UInt32, deadline: UInt32, served: Bool, raisedLowWater: Bool) {
        guard let next = table.rearm(descriptor, generation: generation, timed: true, deadline: deadline,
                                     served: served, raisedLowWater: raisedLowWater) else {
            log.error("connection \(descriptor) was not held by its worker; closing it")
            Glibc.close(descriptor)
            counters.openConnections.subtract(1, ordering: .relaxed)
            return
        }
        guard control(EPOLL_CTL_MOD, descriptor, generation: next) == 0 else {
            log.error("cannot re-arm connection \(descriptor) (error \(errno)); closing it")
            _ = table.claim(descriptor, generation: next)
            close(descriptor, generation: next)
            return
        }
        table.finishArming(descriptor, generation: next)
    }

    /// The worker closes a connection it holds.
    func close(_ descriptor: Int32, generation: UInt32) {
        if !table.release(descriptor, generation: generation) {
            log.error("connection \(descriptor) was not held by its worker when closed")
        }
        Glibc.close(descriptor)
        counters.openConnections.subtract(1, ordering: .relaxed)
    }

    /// libfcgi closed a connection the worker held (end of stream or a protocol error before a
    /// request): only the slot is left to free, if accept(2) has not already reused the number.
    func forget(_ descriptor: Int32, generation: UInt32) {
        table.release(descriptor, generation: generation)
        counters.openConnections.subtract(1, ordering: .relaxed)
    }

    /// A request or its response failed on the wire; the connection is being closed.
    func reportFailedResponse() {
        counters.writeFailures.add(1, ordering: .relaxed)
        failureLog.warning("a FastCGI request or response failed on the connection (peer gone, or too slow for --io-timeout-ms); closed it")
    }
}
