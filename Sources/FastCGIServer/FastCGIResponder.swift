/// Turns requests into responses on one worker thread. The server makes one responder per
/// worker (through a factory), so a responder may own thread-confined resources such as a
/// Redis connection; it is never called from two threads.
///
/// A worker first hands every request it took at once (its batch) to `respondPromptly`, which
/// answers those it can answer without blocking on anything but one shared round trip to its
/// store; each request left unanswered then goes to `respond(to:)`, which may block — the
/// worker hands its place among the active workers on meanwhile (see
/// `FastCGIServerConfiguration.activeThreads`).
public protocol FastCGIResponder {
    /// Answers one request; may block (store round trips, password hashing).
    func respond(to request: FastCGIRequest) -> FastCGIResponse

    /// Answers what it can of requests that arrived together (on different connections), in
    /// any order: calls `deliver(index, response)` at most once per request, as soon as its
    /// response is ready (the worker writes it then). Must not block except on one round trip
    /// for the whole batch.
    func respondPromptly(to requests: [FastCGIRequest], deliver: (Int, FastCGIResponse) -> Void)

    /// Whether `respondPromptly` would leave `request` to `respond(to:)`. A worker holding such
    /// a request reads no more into its batch (it puts the other ready connections back for
    /// other workers), so slow requests are never served one after another by one worker while
    /// others could take them.
    func mayBlock(_ request: FastCGIRequest) -> Bool
}

extension FastCGIResponder {
    /// Answers nothing promptly: every request goes to `respond(to:)`.
    public func respondPromptly(to requests: [FastCGIRequest], deliver: (Int, FastCGIResponse) -> Void) {}

    public func mayBlock(_ request: FastCGIRequest) -> Bool { true }
}
