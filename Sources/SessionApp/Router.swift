import FastCGIServer

/// Maps exact paths and methods to handlers; answers 404 and 405 (with `Allow`) itself.
struct Router {
    typealias Handler = (FastCGIRequest) -> FastCGIResponse

    private var routes: [String: [(method: String, handler: Handler)]] = [:]

    mutating func add(_ method: String, _ path: String, _ handler: @escaping Handler) {
        routes[path, default: []].append((method, handler))
    }

    func route(_ request: FastCGIRequest) -> FastCGIResponse {
        guard let candidates = routes[request.path] else { return Responses.notFound() }
        let method = request.method
        guard let match = candidates.first(where: { $0.method == method }) else {
            return Responses.methodNotAllowed(allowed: candidates.map(\.method))
        }
        return match.handler(request)
    }
}
