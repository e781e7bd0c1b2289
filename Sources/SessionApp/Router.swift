import FastCGIServer

/// Maps exact paths (and path prefixes) and methods to handlers; answers 404 and 405 (with
/// `Allow`) itself. `HEAD` is served by the `GET` handler (RFC 9110 §9.3.2: HEAD is GET without
/// a body; nginx drops the body, the headers stay those of GET).
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

    /// The response, and the route's name for metrics (its path, `prefix*` for prefix routes,
    /// `unknown` for a path no route serves: the set of names stays small whatever clients send).
    func route(_ request: FastCGIRequest) -> (response: FastCGIResponse, route: String) {
        let path = request.path
        let candidates: [(method: String, handler: Handler)]
        let name: String
        if let exact = routes[path] {
            candidates = exact
            name = path
        } else {
            let matches = prefixRoutes.filter { path.hasPrefix($0.prefix) && path.count > $0.prefix.count }
            guard let first = matches.first else { return (Responses.notFound(), "unknown") }
            candidates = matches.map { ($0.method, $0.handler) }
            name = first.prefix + "*"
        }
        let method = request.method
        if let match = candidates.first(where: { $0.method == method }) { return (match.handler(request), name) }
        if method == "HEAD", let get = candidates.first(where: { $0.method == "GET" }) { return (get.handler(request), name) }
        var allowed = candidates.map(\.method)
        if let get = allowed.firstIndex(of: "GET"), !allowed.contains("HEAD") { allowed.insert("HEAD", at: get + 1) }
        return (Responses.methodNotAllowed(allowed: allowed), name)
    }
}
