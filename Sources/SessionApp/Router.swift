import FastCGIServer

/// Maps exact paths (and path prefixes) and methods to handlers; answers 404 and 405 (with
/// `Allow`) itself. `HEAD` is served by the `GET` handler (RFC 9110 §9.3.2: HEAD is GET without
/// a body; nginx drops the body, the headers stay those of GET).
///
/// Each route has a number, its slot in the request metrics (`names` gives its label), so a
/// request is counted without looking anything up by name. Paths are found by comparing with
/// each route in turn: for the dozen short paths of this service that is cheaper than hashing.
struct Router {
    typealias Handler = (FastCGIRequest) -> FastCGIResponse

    /// Route numbers that are not paths: a request refused before routing, a path no route serves.
    static let invalid = 0
    static let unknown = 1

    private var routes: [(path: String, route: Int, candidates: [(method: String, handler: Handler)])] = []
    private var prefixRoutes: [(prefix: String, route: Int, method: String, handler: Handler)] = []
    /// Metric labels by route number: `invalid`, `unknown`, then each path (`prefix*` for prefix routes).
    private(set) var names = ["invalid", "unknown"]

    mutating func add(_ method: String, _ path: String, _ handler: @escaping Handler) {
        if let index = routes.firstIndex(where: { $0.path == path }) {
            routes[index].candidates.append((method, handler))
        } else {
            routes.append((path, names.count, [(method, handler)]))
            names.append(path)
        }
    }

    /// Routes every path that starts with `prefix` (and is longer) to `handler`.
    mutating func add(_ method: String, prefix: String, _ handler: @escaping Handler) {
        let name = prefix + "*"
        let route = names.firstIndex(of: name) ?? names.count
        if route == names.count { names.append(name) }
        prefixRoutes.append((prefix, route, method, handler))
    }

    /// The response, and the route's number for metrics (`unknown` for a path no route serves:
    /// the set of labels stays small whatever clients send).
    func route(_ request: FastCGIRequest) -> (response: FastCGIResponse, route: Int) {
        let path = request.path
        let candidates: [(method: String, handler: Handler)]
        let route: Int
        if let exact = routes.first(where: { $0.path == path }) {
            candidates = exact.candidates
            route = exact.route
        } else {
            let matches = prefixRoutes.filter { path.hasPrefix($0.prefix) && path.count > $0.prefix.count }
            guard let first = matches.first else { return (Responses.notFound(), Self.unknown) }
            candidates = matches.map { ($0.method, $0.handler) }
            route = first.route
        }
        let method = request.method
        if let match = candidates.first(where: { $0.method == method }) { return (match.handler(request), route) }
        if method == "HEAD", let get = candidates.first(where: { $0.method == "GET" }) { return (get.handler(request), route) }
        var allowed = candidates.map(\.method)
        if let get = allowed.firstIndex(of: "GET"), !allowed.contains("HEAD") { allowed.insert("HEAD", at: get + 1) }
        return (Responses.methodNotAllowed(allowed: allowed), route)
    }
}
