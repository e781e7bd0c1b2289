import CFastCGI
import CLinux
import Glibc

/// One worker thread: waits in the shared epoll set, and serves one request at a time on the
/// connection it was woken for, with its own `FCGX_Request`, output buffer and responder. Made
/// on its thread and never shared; a noncopyable struct, so its buffer is accessed with static
/// exclusivity (no runtime checks on the hot path).
struct Worker: ~Copyable {
    let dispatcher: ConnectionDispatcher
    let responder: any FastCGIResponder
    let counters: WorkerCounters
    let maxBodyBytes: Int
    /// Allocated once: libfcgi's streams point back to it, so it must never move.
    let request: UnsafeMutablePointer<FCGX_Request>
    /// Reused for every response of this worker.
    var output = OutputBuffer(capacity: Self.outputCapacity)

    /// The output buffer's usual size, and the size it returns to after a larger response.
    static let outputCapacity = 4096
    static let outputShrinkThreshold = 64 * 1024

    init(dispatcher: ConnectionDispatcher, responder: any FastCGIResponder, counters: WorkerCounters) {
        self.dispatcher = dispatcher
        self.responder = responder
        self.counters = counters
        maxBodyBytes = dispatcher.configuration.maxBodyBytes
        request = .allocate(capacity: 1)
        // No listening socket (-1): the worker hands libfcgi connections it accepted itself. If
        // libfcgi drops one (a protocol error or an end of stream before a request), it loops
        // back to accept(2) on -1 and fails with EBADF instead of blocking on a real listener.
        FCGX_InitRequest(request, -1, 0)
    }

    deinit {
        FCGX_Free(request, 0)
        request.deallocate()
    }

    /// Serves forever (the process exits under it after the drain).
    mutating func run() {
        var event = epoll_event()
        while true {
            guard let (descriptor, generation) = dispatcher.nextEvent(&event) else { continue }
            switch dispatcher.table.claim(descriptor, generation: generation) {
            case .connection: serve(descriptor, generation: generation)
            case .listener: dispatcher.acceptPending(listenerGeneration: generation)
            case nil: continue  // stale: closed, reused or re-armed since the event was queued
            }
        }
    }

    /// Serves the request that woke the worker, then keeps the connection in epoll or closes it.
    private mutating func serve(_ descriptor: Int32, generation: UInt32) {
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
}
