import CLinux
import Glibc

extension ConnectionDispatcher {
    /// Most connections one wake of the listener accepts before re-arming it, so that a flood
    /// of connections cannot keep one worker in accept(2) for long.
    static let acceptBatch = 256
    /// How long the listener rests after accept(2) ran out of descriptors or memory.
    static let acceptPauseMilliseconds = 100

    /// Called by the worker holding the listener: accepts until EAGAIN, registers each new
    /// connection for its first request, and re-arms the listener.
    func acceptPending(listenerGeneration generation: UInt32) {
        let descriptor = listener.descriptor
        for _ in 0..<Self.acceptBatch {
            if isStopping {
                closeListener(generation: generation)
                return
            }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let connection = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept4(descriptor, $0, &length, Int32(SOCK_CLOEXEC.rawValue)) }
            }
            if connection >= 0 {
                admit(connection, peer: storage)
                continue
            }
            let error = errno
            switch error {
            case EAGAIN, EWOULDBLOCK:
                resumeListener(generation: generation)
                return
            case EINTR, ECONNABORTED, EPROTO, EPERM:
                continue
            default:
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: re-arming now would wake a worker again at
                // once for the same pending connection. Rest; the sweeper resumes the listener.
                acceptErrorLog.warning("accept failed (error \(error)); pausing accepts for \(Self.acceptPauseMilliseconds) ms")
                let deadline = MonotonicClock.deadline(after: Self.acceptPauseMilliseconds)
                if let paused = table.rearm(descriptor, generation: generation, timed: true, deadline: deadline, served: false) {
                    table.finishArming(descriptor, generation: paused)
                }
                return
            }
        }
        resumeListener(generation: generation)
    }

    /// Re-arms the listener (held by the caller: an acceptor, or the sweeper after a pause).
    func resumeListener(generation: UInt32) {
        let descriptor = listener.descriptor
        guard !isStopping else {
            closeListener(generation: generation)
            return
        }
        guard let next = table.rearm(descriptor, generation: generation, timed: false, deadline: 0, served: false) else { return }
        guard control(EPOLL_CTL_MOD, descriptor, generation: next) == 0 else {
            log.error("cannot re-arm the listening socket (error \(errno))")
            return
        }
        table.finishArming(descriptor, generation: next)
    }

    /// Stops accepting for good (shutdown): new connections are refused by the kernel.
    func closeListener(generation: UInt32) {
        guard table.release(listener.descriptor, generation: generation) else { return }
        Glibc.close(listener.descriptor)
        if case .unix(let path) = configuration.listen { unlink(path) }
    }

    /// Filters a new connection by peer and limit, then puts it in epoll to wait for its
    /// first request.
    private func admit(_ connection: Int32, peer storage: sockaddr_storage) {
        counters.accepted.add(1, ordering: .relaxed)
        if let peers {
            let peer = PeerAddress(socketAddress: storage)
            guard let peer, peers.allows(peer) else {
                Glibc.close(connection)
                counters.refusedPeers.add(1, ordering: .relaxed)
                refusedLog.warning("refused a FastCGI connection from \(peer.map { "\($0)" } ?? "an unknown address"): not an allowed peer (--allowed-peers)")
                return
            }
        }
        let open = counters.openConnections.add(1, ordering: .relaxed).newValue
        guard table.contains(connection), open <= maxConnections || closeIdleConnectionForANewOne() else {
            counters.openConnections.subtract(1, ordering: .relaxed)
            Glibc.close(connection)
            counters.overLimit.add(1, ordering: .relaxed)
            overLimitLog.warning("closed a new FastCGI connection: \(maxConnections) connections are open (--max-connections), none idle")
            return
        }
        configure(connection)
        let deadline = MonotonicClock.deadline(after: configuration.firstRequestTimeoutMilliseconds)
        let generation = table.register(connection, kind: .connection, timed: true, deadline: deadline)
        guard control(EPOLL_CTL_ADD, connection, generation: generation) == 0 else {
            log.error("cannot watch a new connection (error \(errno)); closing it")
            _ = table.claim(connection, generation: generation)
            close(connection, generation: generation)
            return
        }
        table.finishArming(connection, generation: generation)
    }

    /// With every place taken, makes room for a new connection by closing the idle one least
    /// likely to be nginx's: a silent one (never sent a byte) first, then one with part of a
    /// request (parked, or waiting in epoll for the rest), then one that served; among those
    /// the one whose deadline comes first (the oldest, the least recently used). So a flood of connections from another local
    /// peer, which the address filter cannot tell from nginx on one host, cannot lock nginx
    /// out; it only makes connections churn. One whose request is waiting is not taken: the
    /// next in line is. False if none can be closed.
    private func closeIdleConnectionForANewOne() -> Bool {
        var candidates: [(descriptor: Int32, slot: ConnectionSlot)] = []
        for descriptor in table.registeredRange where descriptor != listener.descriptor {
            let slot = table.slot(descriptor)
            guard slot.state == .armed, slot.kind == .connection else { continue }
            // Keep the few best, in order.
            let place = candidates.firstIndex { slot.isClosedForRoom(before: $0.slot) } ?? candidates.count
            guard place < Self.roomCandidates else { continue }
            candidates.insert((descriptor, slot), at: place)
            if candidates.count > Self.roomCandidates { candidates.removeLast() }
        }
        func closeCandidate(_ candidate: (descriptor: Int32, slot: ConnectionSlot)) -> Bool {
            guard Self.input(on: candidate.descriptor) == .none,
                  table.takeIdle(candidate.descriptor, if: { $0 == candidate.slot }) != nil else { return false }
            Glibc.close(candidate.descriptor)
            counters.openConnections.subtract(1, ordering: .relaxed)
            return true
        }
        let silent = candidates.filter { !$0.slot.served && !$0.slot.raisedLowWater }
        // Silent ones first, then parked ones (part of a request that epoll cannot wait for),
        // then the rest in order.
        guard silent.contains(where: closeCandidate) || closeOldestParked()
              || candidates.filter({ $0.slot.served || $0.slot.raisedLowWater }).contains(where: closeCandidate) else { return false }
        counters.overLimit.add(1, ordering: .relaxed)
        overLimitLog.warning("closed the oldest idle FastCGI connection for a new one: \(maxConnections) connections are open (--max-connections)")
        return true
    }

    /// How many idle connections making room for a new one are tried before giving up.
    static let roomCandidates = 8

    /// Bounds every read and write of a request (libfcgi blocks in them), and turns off Nagle
    /// on TCP as libfcgi's own accept does.
    private func configure(_ connection: Int32) {
        let milliseconds = configuration.ioTimeoutMilliseconds
        var timeout = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        let size = socklen_t(MemoryLayout<timeval>.size)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, size)
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, size)
        if listener.isTCP {
            var on: Int32 = 1
            setsockopt(connection, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        }
    }
}
