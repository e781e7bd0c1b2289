import Glibc

/// A connection held out of epoll with part of a request: its slot as the worker claimed it
/// (still `busy`, so nothing else touches it), and when and for how many bytes to look again.
struct ParkedConnection: Sendable {
    let descriptor: Int32
    let slot: ConnectionSlot
    /// A worker looks again once this many bytes are waiting (what the request needs next),
    /// or when the peer has closed.
    let recheckAt: Int
    /// When the sweeper next counts the waiting bytes (`MonotonicClock`), and the pause after
    /// that, doubling up to `ParkedConnections.longestPause` while nothing arrives.
    var due: UInt32
    var pause: UInt32
}

/// The parked connections and the sweeper's next planned wake.
struct ParkedConnections: Sendable {
    var entries: [ParkedConnection] = []
    /// When the sweeper will look next (nil: not planned, it waits its usual interval).
    var plannedWake: UInt32?

    static let firstPause: UInt32 = 1
    static let longestPause: UInt32 = 100

    /// The earliest `due`, if any.
    var earliestDue: UInt32? {
        entries.map(\.due).min { Int32(bitPattern: $0 &- $1) < 0 }
    }
}

extension ConnectionDispatcher {
    /// The worker found part of a request that epoll cannot wait for: on a Unix socket (epoll
    /// ignores SO_RCVLOWAT there), or on TCP when the kernel reported the connection readable
    /// short of its low-water mark or capped the mark below what is needed (re-armed, it would
    /// be reported again at once, forever). The connection leaves epoll; the sweeper counts
    /// its waiting bytes (FIONREAD, no copy) after 1 ms, then at doubling pauses up to 100 ms,
    /// hands it back to epoll once `recheckAt` bytes are waiting or the peer closed, and
    /// closes it at its deadline. A stalled peer thus costs no worker and no spinning.
    func park(_ descriptor: Int32, slot: ConnectionSlot, recheckAt: Int) {
        var partial = slot
        partial.deadline = partialRequestDeadline(slot)
        partial.raisedLowWater = true  // SO_RCVLOWAT is put back to 1 before libfcgi reads
        let now = MonotonicClock.now()
        let due = now &+ ParkedConnections.firstPause
        let wake = parked.withLock { state -> Bool in
            state.entries.append(ParkedConnection(descriptor: descriptor, slot: partial, recheckAt: recheckAt, due: due,
                                                  pause: ParkedConnections.firstPause))
            guard let planned = state.plannedWake else { return true }
            return Int32(bitPattern: due &- planned) < 0
        }
        // The sweeper may be in a long wait: have it plan again.
        if wake { kill(getpid(), Self.wakeSignal) }
    }

    /// Wakes the sweeper (the main thread, which waits for it with the stop signals; blocked
    /// in every thread). Its default action is to be ignored.
    static let wakeSignal = SIGURG

    /// The deadline of a connection on which part of a request has just been found: a kept
    /// connection's idle deadline gives way to the first-request timeout from now, so a
    /// request begun on it must be whole within that time like a new connection's first one.
    func partialRequestDeadline(_ slot: ConnectionSlot) -> UInt32 {
        guard !slot.raisedLowWater else { return slot.deadline }
        let limit = MonotonicClock.deadline(after: configuration.firstRequestTimeoutMilliseconds)
        return Int32(bitPattern: limit &- slot.deadline) < 0 ? limit : slot.deadline
    }

    /// Looks at the parked connections that are due: back into epoll those with the bytes
    /// they wait for (or whose peer closed), closed those past their deadline (all of them
    /// once stopping), the others left for a later look. Returns the milliseconds until the
    /// next one is due (nil: none parked), and records it as the sweeper's planned wake.
    @discardableResult
    func sweepParked(now: UInt32 = MonotonicClock.now()) -> Int? {
        let stopping = isStopping
        let due = parked.withLock { state -> [ParkedConnection] in
            var due: [ParkedConnection] = []
            state.entries.removeAll { entry in
                let take = stopping || MonotonicClock.hasPassed(entry.due, now: now) || MonotonicClock.hasPassed(entry.slot.deadline, now: now)
                if take { due.append(entry) }
                return take
            }
            return due
        }
        var later: [ParkedConnection] = []
        for var entry in due {
            if stopping || MonotonicClock.hasPassed(entry.slot.deadline, now: now) {
                close(entry.descriptor, generation: entry.slot.generation)
                countClosedAtDeadline(entry.slot)
            } else if Self.bytesWaiting(on: entry.descriptor) >= entry.recheckAt || Self.input(on: entry.descriptor) == .peerClosed {
                putBack(entry.descriptor, slot: entry.slot)
            } else {
                entry.pause = min(entry.pause &* 2, ParkedConnections.longestPause)
                entry.due = now &+ entry.pause
                later.append(entry)
            }
        }
        return parked.withLock { state -> Int? in
            state.entries.append(contentsOf: later)
            guard let next = state.earliestDue else {
                state.plannedWake = nil
                return nil
            }
            state.plannedWake = next
            return max(0, Int(Int32(bitPattern: next &- now)))
        }
    }

    /// Closes the parked connection with the earliest deadline whose rest has not arrived
    /// (one that has is left for the sweeper to hand back), to make room at the connection
    /// limit. False if there is none.
    func closeOldestParked() -> Bool {
        let byDeadline = parked.withLock { $0.entries }.sorted { Int32(bitPattern: $0.slot.deadline &- $1.slot.deadline) < 0 }
        for entry in byDeadline where Self.bytesWaiting(on: entry.descriptor) < entry.recheckAt {
            let taken = parked.withLock { state -> Bool in
                guard let index = state.entries.firstIndex(where: {
                    $0.descriptor == entry.descriptor && $0.slot.generation == entry.slot.generation
                }) else { return false }
                state.entries.remove(at: index)
                return true
            }
            guard taken else { continue }
            close(entry.descriptor, generation: entry.slot.generation)
            return true
        }
        return false
    }

    /// The connection's SO_RCVLOWAT as the kernel keeps it (it may lower what was asked).
    static func lowWater(of descriptor: Int32) -> Int {
        var value: Int32 = 1
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_RCVLOWAT, &value, &length) == 0 else { return 1 }
        return Int(value)
    }

    /// Bytes waiting to be read on `descriptor` (0 if it cannot be told).
    static func bytesWaiting(on descriptor: Int32) -> Int {
        var count: Int32 = 0
        return ioctl(descriptor, UInt(FIONREAD), &count) == 0 ? Int(count) : 0
    }
}
