/// Turns requests into responses on one worker thread. The server makes one responder per
/// worker (through a factory), so a responder may own thread-confined resources such as a
/// Redis connection; it is never called from two threads.
public protocol FastCGIResponder {
    func respond(to request: FastCGIRequest) -> FastCGIResponse
}
