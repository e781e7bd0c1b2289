import CFastCGI
import Glibc

extension Worker {
    /// What came of reading a request.
    enum ReadOutcome {
        /// `readPastEnd`: libfcgi read bytes past the request's end into its buffer (a next
        /// request sent before this one was answered), which it drops when the request is freed.
        case read(FastCGIRequest, readPastEnd: Bool)
        /// The connection must be closed (libfcgi failed with the descriptor still in place).
        case close
        /// libfcgi closed the descriptor itself (end of stream or a protocol error before a
        /// request): the number may already belong to a new connection.
        case connectionGone
    }

    /// What became of the connection after its response.
    enum WriteOutcome {
        /// The response went out and the peer asked to keep the connection (FCGI_KEEP_CONN).
        case keep
        /// The connection must be closed: the peer did not ask to keep it, or I/O failed.
        case close
    }

    /// Reads one request from `descriptor` with libfcgi into `request` (the batch's place for
    /// it), without ever letting libfcgi keep or close the descriptor behind the worker's back.
    /// The request stays open in `request` until `writeResponse` finishes it.
    func readRequest(on descriptor: Int32, into request: UnsafeMutablePointer<FCGX_Request>) -> ReadOutcome {
        // FCGX_Accept_r starts with FCGX_Finish_r, which closes ipcFd when the previous request
        // did not ask to keep its connection: claim "keep" so that it leaves this one alone.
        request.pointee.keepConnection = 1
        // If libfcgi drops the connection (end of stream, protocol error), a plain close(2)
        // rather than its shutdown-then-poll-for-EOF, which can hold the worker for seconds.
        request.pointee.detached = 1
        // libfcgi only accepts when ipcFd < 0: it reads this request from the descriptor given.
        request.pointee.ipcFd = descriptor
        guard FCGX_Accept_r(request) >= 0 else {
            // libfcgi fails only after closing the descriptor (its ipcFd is then -1); should it
            // ever fail with the descriptor still in place, it is still the worker's to close.
            let closedByLibrary = request.pointee.ipcFd != descriptor
            request.pointee.ipcFd = -1
            return closedByLibrary ? .connectionGone : .close
        }
        counters.requests.add(1, ordering: .relaxed)
        let read = Self.readRequest(request, maxBodyBytes: maxBodyBytes)
        // The input stream is at its end now; what libfcgi read beyond it is another request's.
        let input = request.pointee.in
        let readPastEnd = LibfcgiReadAhead.isMeasurable && input != nil && FCGX_HasSeenEOF(input) != 0
            && session_fcgx_bytes_read_ahead(input) > 0
        return .read(read, readPastEnd: readPastEnd)
    }

    /// Writes `response` for the open `request` and finishes it (the descriptor stays open).
    mutating func writeResponse(_ response: FastCGIResponse, to request: UnsafeMutablePointer<FCGX_Request>) -> WriteOutcome {
        let written = Self.write(response, to: request, buffer: &output)
        output.removeAll(shrinkingAbove: Self.outputShrinkThreshold)
        let finished = Self.finish(request)
        let keep = request.pointee.keepConnection != 0
        // The connection is the worker's again: the next request must not find it in ipcFd.
        request.pointee.ipcFd = -1
        guard written && finished else {
            dispatcher.reportFailedResponse()
            return .close
        }
        return keep ? .keep : .close
    }

    /// What `FCGX_Finish_r` does, except closing the descriptor: flushes the output and the
    /// END_REQUEST record, frees the streams and params. Returns false if any I/O failed.
    private static func finish(_ request: UnsafeMutablePointer<FCGX_Request>) -> Bool {
        var succeeded = true
        if request.pointee.in != nil {
            if FCGX_FClose(request.pointee.err) != 0 { succeeded = false }
            if FCGX_FClose(request.pointee.out) != 0 { succeeded = false }
            if FCGX_GetError(request.pointee.in) != 0 { succeeded = false }
        }
        FCGX_Free(request, 0)
        return succeeded
    }

    /// Copies params and body out of libfcgi's buffers (they die at `FCGX_Free`), and reads the
    /// input stream to its end so that the connection holds nothing of this request afterwards.
    private static func readRequest(_ request: UnsafeMutablePointer<FCGX_Request>, maxBodyBytes: Int) -> FastCGIRequest {
        let params = request.pointee.envp.map { FastCGIParams(copyingEnvironment: $0) } ?? FastCGIParams()
        defer { discardInput(request) }
        guard let lengthText = params["CONTENT_LENGTH"], !lengthText.isEmpty else {
            return FastCGIRequest(params: params)
        }
        guard lengthText.utf8.count <= 18, let length = Int(lengthText), length >= 0 else {
            return FastCGIRequest(params: params, bodyProblem: .malformedLength)
        }
        if length == 0 { return FastCGIRequest(params: params) }
        guard length <= maxBodyBytes else {
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

    /// Reads and drops the rest of the input stream, up to its end record. Usually that record
    /// is already in libfcgi's buffer (nginx sends it with the params), so this costs no read;
    /// left unread, it would arrive as garbage before the next request on a kept connection.
    private static func discardInput(_ request: UnsafeMutablePointer<FCGX_Request>) {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 16 * 1024) { buffer in
            guard let base = buffer.baseAddress else { return }
            while FCGX_GetStr(base, Int32(buffer.count), request.pointee.in) > 0 {}
        }
    }

    /// Serializes into the worker's reused buffer and hands libfcgi one piece. False if libfcgi
    /// could not take it all (a write to the connection failed).
    private static func write(_ response: FastCGIResponse, to request: UnsafeMutablePointer<FCGX_Request>, buffer: inout OutputBuffer) -> Bool {
        buffer.removeAll()
        response.serialize(into: &buffer)
        let bytes = buffer.bytes
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        return FCGX_PutStr(base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), request.pointee.out) == Int32(bytes.count)
    }
}
