import CFastCGI
import CLinux
import Glibc

/// One worker thread: waits in the shared epoll set, takes every connection epoll reports ready
/// (up to `batchLimit`), reads the request waiting on each, and has the responder answer them
/// together (`FastCGIResponder.respondPromptly`, which can ask Redis for all of them in one
/// round trip); each response is written as soon as it is delivered, and its connection kept
/// in epoll or closed. Requests the responder leaves (routes that may block) are then served
/// one by one, with the worker's permit handed on (`WorkerGate`); once it holds one, the worker
/// reads no more into the batch. Under light load a batch is one request. Made on its thread and
/// never shared; a noncopyable struct, so its buffers are accessed with static exclusivity (no
/// runtime checks on the hot path).
struct Worker: ~Copyable {
    let dispatcher: ConnectionDispatcher
    let responder: any FastCGIResponder
    let counters: WorkerCounters
    let maxBodyBytes: Int
    let batchLimit: Int
    /// One libfcgi request per place in a batch, allocated once: libfcgi's streams point back
    /// to them, so they must never move.
    let requests: UnsafeMutablePointer<FCGX_Request>
    /// Where epoll reports ready descriptors (`batchLimit` of them).
    let events: UnsafeMutablePointer<epoll_event>
    /// The batch being served: each request read, and the connection it came on, by index
    /// (`closeAfterAnswer`: bytes of a next request were queued behind it, see `take`).
    var incoming: [FastCGIRequest] = []
    var held: [(descriptor: Int32, generation: UInt32, closeAfterAnswer: Bool)] = []
    /// Which requests of the batch the responder has answered.
    var delivered: [Bool] = []
    /// Reused for every response of this worker.
    var output = OutputBuffer(capacity: Self.outputCapacity)
    /// Where the waiting bytes of a connection are peeked at (`RequestFraming`): fixed size.
    let peekBuffer: UnsafeMutableRawBufferPointer

    /// The output buffer's usual size, and the size it returns to after a larger response.
    static let outputCapacity = 4096
    static let outputShrinkThreshold = 64 * 1024
    /// Every request is checked whole before libfcgi reads it, so none may be larger than the
    /// params' limit plus the largest body (`maxBodyBytesLimit`; a body over `--max-body-bytes` but
    /// within it still gets its 413) plus room for record headers and padding (nginx sends a
    /// body in records of 32 KiB); anything larger is refused. nginx's limits in our template
    /// (32 KiB of headers, 64 KiB of body) keep real requests below it.
    static let peekCapacity = RequestFraming.maxParamsBytes + FastCGIServerConfiguration.maxBodyBytesLimit + 8 * 1024

    init(dispatcher: ConnectionDispatcher, responder: any FastCGIResponder, counters: WorkerCounters) {
        self.dispatcher = dispatcher
        self.responder = responder
        self.counters = counters
        maxBodyBytes = min(dispatcher.configuration.maxBodyBytes, FastCGIServerConfiguration.maxBodyBytesLimit)
        batchLimit = max(1, dispatcher.configuration.batchLimit)
        requests = .allocate(capacity: batchLimit)
        events = .allocate(capacity: batchLimit)
        peekBuffer = .allocate(byteCount: Self.peekCapacity, alignment: 16)
        incoming.reserveCapacity(batchLimit)
        held.reserveCapacity(batchLimit)
        delivered.reserveCapacity(batchLimit)
        // No listening socket (-1): the worker hands libfcgi connections it accepted itself. If
        // libfcgi drops one (a protocol error or an end of stream before a request), it loops
        // back to accept(2) on -1 and fails with EBADF instead of blocking on a real listener.
        for index in 0..<batchLimit { FCGX_InitRequest(requests + index, -1, 0) }
    }

    deinit {
        for index in 0..<batchLimit { FCGX_Free(requests + index, 0) }
        requests.deallocate()
        events.deallocate()
        peekBuffer.deallocate()
    }

    /// Serves forever (the process exits under it after the drain).
    mutating func run() {
        dispatcher.gate.enter()
        while true {
            let ready = dispatcher.nextEvents(events, capacity: batchLimit)
            var holdsBlocking = false
            for index in 0..<ready {
                let (descriptor, generation) = ConnectionTable.decode(events[index].data.u64)
                // Nil: a stale event (closed, reused or re-armed since it was queued).
                guard let slot = dispatcher.table.claim(descriptor, generation: generation) else { continue }
                switch slot.kind {
                case .connection where holdsBlocking:
                    // This worker will serve a slow request: the rest go to other workers.
                    dispatcher.putBack(descriptor, slot: slot)
                case .connection:
                    if take(descriptor, slot: slot), let request = incoming.last, responder.mayBlock(request) {
                        holdsBlocking = true
                    }
                case .listener:
                    dispatcher.acceptPending(listenerGeneration: generation)
                }
            }
            answerBatch()
            // The requests (params, bodies) are not kept while the worker waits.
            incoming.removeAll(keepingCapacity: true)
            held.removeAll(keepingCapacity: true)
        }
    }

    /// Reads the request that woke the worker on `descriptor` into the batch (true); or, when
    /// there is none to serve yet, keeps the connection in epoll or closes it (false).
    private mutating func take(_ descriptor: Int32, slot: ConnectionSlot) -> Bool {
        let generation = slot.generation
        let pipelined: Bool
        switch waitingRequest(on: descriptor, raisedLowWater: slot.raisedLowWater) {
        case .closed, .refused:
            dispatcher.close(descriptor, generation: generation)
            return false
        case .nothingYet:
            dispatcher.putBack(descriptor, slot: slot)
            return false
        case .incomplete(let bytesNeeded) where dispatcher.listener.isTCP:
            dispatcher.waitForRest(descriptor, slot: slot, bytesNeeded: bytesNeeded, bufferBytes: 2 * peekBuffer.count)
            return false
        case .incomplete(let bytesNeeded), .wokenEarly(let bytesNeeded):
            // epoll cannot wait for the rest: epoll ignores SO_RCVLOWAT on Unix sockets, and
            // the kernel reported this TCP connection readable short of its mark (re-armed, it
            // would be reported again at once).
            dispatcher.park(descriptor, slot: slot, recheckAt: bytesNeeded)
            return false
        case .complete(let nextRequestQueued):
            pipelined = nextRequestQueued
            if slot.raisedLowWater {
                var one: Int32 = 1
                setsockopt(descriptor, SOL_SOCKET, SO_RCVLOWAT, &one, socklen_t(MemoryLayout<Int32>.size))
            }
        }
        switch readRequest(on: descriptor, into: requests + held.count) {
        case .read(let request, let readPastEnd):
            incoming.append(request)
            // A next request sent before this one was answered (nginx never does that): libfcgi
            // reads ahead into its own buffer and drops what it read past this request when the
            // request is freed, so that one would never be answered and the peer would wait
            // on a kept connection for the idle timeout. Its connection is closed after this
            // answer instead: the peer sees at once that the rest was not taken. Known from the
            // peek when the bytes were already there, and from libfcgi's buffer when they came
            // between the peek and libfcgi's read.
            held.append((descriptor, generation, pipelined || readPastEnd))
            return true
        case .connectionGone:
            dispatcher.forget(descriptor, generation: generation)
        case .close:
            dispatcher.close(descriptor, generation: generation)
        }
        return false
    }

    /// Has the responder answer the batch, writing each response as it is delivered: first
    /// what it answers promptly, then each other request on its own, with this worker's permit
    /// handed to a standby worker meanwhile (those requests may block).
    private mutating func answerBatch() {
        guard !incoming.isEmpty else { return }
        counters.batches.add(1, ordering: .relaxed)
        let responder = self.responder
        let batch = incoming
        delivered.removeAll(keepingCapacity: true)
        delivered.append(contentsOf: repeatElement(false, count: batch.count))
        var remaining = batch.count
        responder.respondPromptly(to: batch) { index, response in
            guard delivered.indices.contains(index), !delivered[index] else { return }
            delivered[index] = true
            remaining -= 1
            conclude(index, response)
        }
        guard remaining > 0 else { return }
        dispatcher.gate.leave()
        for index in batch.indices where !delivered[index] {
            conclude(index, responder.respond(to: batch[index]))
        }
        dispatcher.gate.enter()
    }

    /// Writes the response of the batch's request `index`, then keeps its connection in epoll
    /// (when the peer asked to keep it) or closes it.
    private mutating func conclude(_ index: Int, _ response: FastCGIResponse) {
        let (descriptor, generation, closeAfterAnswer) = held[index]
        switch writeResponse(response, to: requests + index) {
        case .keep where !closeAfterAnswer:
            // No zero-timeout poll for a next request already waiting, to serve it without
            // re-arming: measured behind nginx it almost never found one (nginx sends the next
            // request on a connection only after it has read this response), so it cost a
            // system call per request for nothing.
            dispatcher.handBack(descriptor, generation: generation)
        case .keep, .close:
            dispatcher.close(descriptor, generation: generation)
        }
    }

    private enum Waiting {
        /// A whole request (or bytes libfcgi refuses at once); `nextRequestQueued`: more bytes
        /// were already waiting behind it.
        case complete(nextRequestQueued: Bool)
        case incomplete(bytesNeeded: Int)
        /// No byte after all (a wake-up with nothing to read).
        case nothingYet
        /// Part of a request, and the kernel reported the connection readable with fewer bytes
        /// than its low-water mark (its receive window nearly closed, or memory short).
        case wokenEarly(bytesNeeded: Int)
        /// The peer closed or reset the connection: nothing to serve.
        case closed
        /// Bytes that libfcgi must not read (`RequestFraming.Verdict.refused`).
        case refused
    }

    /// Peeks at the bytes waiting on `descriptor`, without consuming them or blocking.
    /// `raisedLowWater`: the connection was re-armed with SO_RCVLOWAT for the rest of a request.
    private func waitingRequest(on descriptor: Int32, raisedLowWater: Bool) -> Waiting {
        var lookedAgain = false
        // The bytes queued before a second peek, once a first one found too few (see below).
        var queuedBefore: Int?
        while true {
            let count = recv(descriptor, peekBuffer.baseAddress, peekBuffer.count, Int32(MSG_PEEK | MSG_DONTWAIT))
            if count == 0 { return .closed }
            if count < 0 && errno == EINTR { continue }
            let seen = max(0, count)
            if count < 0 && errno != EAGAIN && errno != EWOULDBLOCK { return .closed }
            // A peek that sees fewer bytes than are queued has met bytes it cannot pass, such as
            // descriptors passed over a Unix socket or an out-of-band byte, which nginx never
            // sends: waiting for more would wake a worker again and again for bytes it can never
            // see. Counted (FIONREAD) only when a peek finds no whole request, then peeked again:
            // queued bytes only grow, so a second peek that still sees fewer is stuck.
            let verdict = count < 0 ? nil : RequestFraming.inspect(UnsafeRawBufferPointer(rebasing: peekBuffer[0..<seen]))
            if let queuedBefore {
                if seen < min(queuedBefore, peekBuffer.count) { return .refused }
            } else if verdict?.isIncomplete ?? true {
                let queued = ConnectionDispatcher.bytesWaiting(on: descriptor)
                if queued > seen {
                    queuedBefore = queued
                    continue
                }
            }
            guard let verdict else { return .nothingYet }
            switch verdict {
            case .complete(let length): return .complete(nextRequestQueued: seen > length)
            case .notFastCGI: return .complete(nextRequestQueued: false)
            case .refused: return .refused
            case .incomplete(let bytesNeeded):
                // Larger than any request an instance accepts: libfcgi would read records
                // never checked.
                if count == peekBuffer.count || bytesNeeded > peekBuffer.count { return .refused }
                // A peer that shut its side down mid-request will never finish it; its
                // connection would otherwise be reported readable again at once, forever.
                // (Looked at once more: the rest may have come with the end of stream.)
                if ConnectionDispatcher.input(on: descriptor) == .peerClosed {
                    if lookedAgain { return .closed }
                    lookedAgain = true
                    continue
                }
                if raisedLowWater && count < ConnectionDispatcher.lowWater(of: descriptor) { return .wokenEarly(bytesNeeded: bytesNeeded) }
                return .incomplete(bytesNeeded: bytesNeeded)
            }
        }
    }
}
