import CFastCGI
import CLinux
import Glibc

/// One worker thread: waits in the shared epoll set, and serves one request at a time on the
/// connection it was woken for, with its own `FCGX_Request`, output buffer and responder. Made
/// on its thread and never shared; a noncopyable struct, so its buffers are accessed with
/// static exclusivity (no runtime checks on the hot path).
struct Worker: ~Copyable {
    let dispatcher: ConnectionDispatcher
    let responder: any FastCGIResponder
    let counters: WorkerCounters
    let maxBodyBytes: Int
    /// Allocated once: libfcgi's streams point back to it, so it must never move.
    let request: UnsafeMutablePointer<FCGX_Request>
    /// Reused for every response of this worker.
    var output = OutputBuffer(capacity: Self.outputCapacity)
    /// Where the waiting bytes of a TCP connection are peeked at (`RequestFraming`): fixed size.
    let peekBuffer: UnsafeMutableRawBufferPointer

    /// The output buffer's usual size, and the size it returns to after a larger response.
    static let outputCapacity = 4096
    static let outputShrinkThreshold = 64 * 1024
    /// Requests up to this size are checked to be whole before libfcgi reads them; nginx's
    /// limits in our template (32 KiB of headers, 64 KiB of body) keep real ones below it. A
    /// larger one is handed over once this much has arrived.
    static let peekCapacity = 128 * 1024

    init(dispatcher: ConnectionDispatcher, responder: any FastCGIResponder, counters: WorkerCounters) {
        self.dispatcher = dispatcher
        self.responder = responder
        self.counters = counters
        maxBodyBytes = dispatcher.configuration.maxBodyBytes
        request = .allocate(capacity: 1)
        peekBuffer = .allocate(byteCount: Self.peekCapacity, alignment: 16)
        // No listening socket (-1): the worker hands libfcgi connections it accepted itself. If
        // libfcgi drops one (a protocol error or an end of stream before a request), it loops
        // back to accept(2) on -1 and fails with EBADF instead of blocking on a real listener.
        FCGX_InitRequest(request, -1, 0)
    }

    deinit {
        FCGX_Free(request, 0)
        request.deallocate()
        peekBuffer.deallocate()
    }

    /// Serves forever (the process exits under it after the drain).
    mutating func run() {
        var event = epoll_event()
        while true {
            guard let (descriptor, generation) = dispatcher.nextEvent(&event) else { continue }
            // Nil: a stale event (closed, reused or re-armed since it was queued).
            guard let slot = dispatcher.table.claim(descriptor, generation: generation) else { continue }
            switch slot.kind {
            case .connection: serve(descriptor, slot: slot)
            case .listener: dispatcher.acceptPending(listenerGeneration: generation)
            }
        }
    }

    /// Serves the request that woke the worker, then keeps the connection in epoll or closes it.
    private mutating func serve(_ descriptor: Int32, slot: ConnectionSlot) {
        let generation = slot.generation
        // Unix sockets are not checked: epoll ignores SO_RCVLOWAT on them, and their peers are
        // the ones their file permissions let in.
        if dispatcher.listener.isTCP {
            switch waitingRequest(on: descriptor) {
            case .closed, .refused:
                dispatcher.close(descriptor, generation: generation)
                return
            case .incomplete(let bytesNeeded):
                dispatcher.waitForRest(descriptor, slot: slot, bytesNeeded: bytesNeeded)
                return
            case .complete:
                if slot.raisedLowWater {
                    var one: Int32 = 1
                    setsockopt(descriptor, SOL_SOCKET, SO_RCVLOWAT, &one, socklen_t(MemoryLayout<Int32>.size))
                }
            }
        }
        switch serveOneRequest(on: descriptor) {
        case .connectionGone:
            dispatcher.forget(descriptor, generation: generation)
        case .close:
            dispatcher.close(descriptor, generation: generation)
        case .keep:
            // No zero-timeout poll for a next request already waiting, to serve it without
            // re-arming: measured behind nginx it almost never found one (nginx sends the next
            // request on a connection only after it has read this response), so it cost a
            // system call per request for nothing.
            dispatcher.handBack(descriptor, generation: generation)
        }
    }

    private enum Waiting {
        /// A whole request (or bytes libfcgi refuses at once, or more than `peekCapacity`).
        case complete
        case incomplete(bytesNeeded: Int)
        /// The peer closed or reset the connection: nothing to serve.
        case closed
        /// Bytes that libfcgi must not read (`RequestFraming.Verdict.refused`).
        case refused
    }

    /// Peeks at the bytes waiting on `descriptor`, without consuming them or blocking.
    private func waitingRequest(on descriptor: Int32) -> Waiting {
        while true {
            let count = recv(descriptor, peekBuffer.baseAddress, peekBuffer.count, Int32(MSG_PEEK | MSG_DONTWAIT))
            if count == 0 { return .closed }
            if count < 0 {
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: return .incomplete(bytesNeeded: 1)
                default: return .closed
                }
            }
            switch RequestFraming.inspect(UnsafeRawBufferPointer(rebasing: peekBuffer[0..<count])) {
            case .complete, .notFastCGI: return .complete
            case .refused: return .refused
            case .incomplete(let bytesNeeded):
                // A request larger than the buffer is handed over once the buffer is full (its
                // params, checked above, have ended within it).
                if count == peekBuffer.count { return .complete }
                return .incomplete(bytesNeeded: min(bytesNeeded, peekBuffer.count))
            }
        }
    }
}
