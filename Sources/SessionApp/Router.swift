import FastCGIServer

/// Maps exact paths and methods to handlers; answers 404 and 405 (with `Allow`) itself.
struct Router {
    typealias Handler = (FastCGIRequest) -> FastCGIResponse

    private var routes: [String: [(method: String, handler: Handler)]] = [:]
    private var prefixRoutes: [(prefix: String, method: String, handler: Handler)] = []

    mutating func add(_ method: String, _ path: String, _ handler: @escaping Handler) {
        routes[path, default: []].append((method, handler))
    }

    /// Routes every path that starts with `prefix` (and is longer) to `handler`.
    mutating func add(_ method: String, prefix: String, _ handler: @escaping Handler) {
        prefixRoutes.append((prefix, method, handler))
    }

    func route(_ request: FastCGIRequest) -> FastCGIResponse {
        let path = request.path
        guard let candidates = routes[path] else {
            let matches = prefixRoutes.filter { path.hasPrefix($0.prefix) && path.count > $0.prefix.count }
            guard !matches.isEmpty else { return Responses.notFound() }
            guard let match = matches.first(where: { $0.method == request.method }) else {
                return Responses.methodNotAllowed(allowed: matches.map(\.method))
            }
            return match.handler(request)
        }
        let method = request.method
        guard let match = candidates.first(where: { $0.method == method }) else {
            return Responses.methodNotAllowed(allowed: candidates.map(\.method))
        }
        return match.handler(request)
    }
}
