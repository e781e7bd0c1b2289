import Glibc

extension ConnectionDispatcher {
    /// How often the main thread looks for expired connections: a quarter of the shortest
    /// timeout, between 10 ms and 250 ms.
    var sweepIntervalMilliseconds: Int {
        let shortest = min(configuration.firstRequestTimeoutMilliseconds, configuration.idleConnectionTimeoutSeconds * 1000)
        return min(250, max(10, shortest / 4))
    }

    /// Closes idle connections past their deadline (silent new ones after the first-request
    /// timeout, kept ones after the idle timeout) and resumes a paused listener.
    ///
    /// A connection with input waiting (or its peer's end of stream) is left to the worker it
    /// is reported to, even past its deadline: a request that arrived just before the idle
    /// deadline (or was put back into epoll by a worker that served another request first) is
    /// answered, never dropped with its connection. The worker closes it if the request is not
    /// whole, or waits for the rest, or parks it (`sweepParked` closes parked connections at
    /// their deadline), so a peer trickling a request is closed at its deadline whatever the
    /// kernel reports. Claims and this sweep race on the slot word: whichever moves it first
    /// wins.
    func sweep(now: UInt32 = MonotonicClock.now()) {
        for descriptor in table.registeredRange {
            guard let slot = table.takeIdle(descriptor, if: { slot in
                slot.hasExpired(at: now) && (slot.kind == .listener || Self.input(on: descriptor) == .none)
            }) else { continue }
            switch slot.kind {
            case .connection:
                Glibc.close(descriptor)
                counters.openConnections.subtract(1, ordering: .relaxed)
                countClosedAtDeadline(slot)
            case .listener:
                resumeListener(generation: slot.generation)
            }
        }
    }

    /// Shutdown: stop accepting, close every idle connection, let the requests in progress
    /// (and any already waiting on a connection) finish, each connection being closed after
    /// its response. Returns whether everything was closed within `graceMilliseconds`.
    func drain(graceMilliseconds: Int) -> Bool {
        stopping.store(true, ordering: .sequentiallyConsistent)
        let deadline = MonotonicClock.deadline(after: graceMilliseconds)
        while true {
            sweepParked()
            var open = 0
            for descriptor in table.registeredRange {
                if table.slot(descriptor).state == .free { continue }
                // An armed connection with bytes waiting has a request (or its peer's close)
                // on the way to a worker: leave it to the worker, which closes it after.
                let idle = table.takeIdle(descriptor) { slot in
                    slot.state == .armed && (slot.kind == .listener || Self.input(on: descriptor) == .none)
                }
                switch idle?.kind {
                case .connection:
                    Glibc.close(descriptor)
                    counters.openConnections.subtract(1, ordering: .relaxed)
                case .listener:
                    if let idle { closeListener(generation: idle.generation) }
                case nil:
                    open += 1
                }
            }
            if open == 0 { return true }
            if MonotonicClock.hasPassed(deadline, now: MonotonicClock.now()) { return false }
            usleep(10_000)
        }
    }

    /// Counts a connection closed because its deadline passed: idle if it had served, silent
    /// if not.
    func countClosedAtDeadline(_ slot: ConnectionSlot) {
        if slot.served {
            counters.idleClosed.add(1, ordering: .relaxed)
        } else {
            counters.silentClosed.add(1, ordering: .relaxed)
        }
    }

    /// What is waiting on a connection, without reading it.
    enum Input: Equatable {
        /// Nothing to read yet (on TCP: fewer bytes than its SO_RCVLOWAT).
        case none
        /// Bytes to read, and the peer may still send more.
        case waiting
        /// The peer shut its side down (or the connection failed): whatever is waiting is all
        /// there will ever be.
        case peerClosed
    }

    /// `POLLRDHUP` (Linux): the peer shut down its writing side.
    private static let peerShutdownEvent: Int16 = 0x2000

    static func input(on descriptor: Int32) -> Input {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN) | peerShutdownEvent, revents: 0)
        guard poll(&entry, 1, 0) == 1 else { return .none }
        if entry.revents & (peerShutdownEvent | Int16(POLLHUP) | Int16(POLLERR) | Int16(POLLNVAL)) != 0 { return .peerClosed }
        return entry.revents & Int16(POLLIN) != 0 ? .waiting : .none
    }
}
