import FastCGIServer
import SessionCore

/// Maps exact paths (and path prefixes) and methods to handlers; answers 404 and 405 (with
/// `Allow`) itself. `HEAD` is served by the `GET` handler (RFC 9110 §9.3.2: HEAD is GET without
/// a body; nginx drops the body, the headers stay those of GET).
///
/// Each route has a number, its slot in the request metrics (`names` gives its label), so a
/// request is counted without looking anything up by name. Paths are found by comparing with
/// each route in turn: for the dozen short paths of this service that is cheaper than hashing.
struct Router {
    typealias Handler = (FastCGIRequest) -> FastCGIResponse
    /// A route whose answer may wait for one store call (see `RouteStep`).
    typealias StagedHandler = (FastCGIRequest) -> RouteStep

    /// What a request was routed to.
    enum Match {
        /// Answered by the router itself (404, 405).
        case answered(FastCGIResponse)
        /// A route that answers without any I/O.
        case prompt(Handler)
        /// A route whose answer may wait for one store call, asked with other requests'.
        case staged(StagedHandler)
        /// A route that may block: several store calls, a password hash.
        case blocking(Handler)
    }

    private enum Route {
        case prompt(Handler)
        case staged(StagedHandler)
        case blocking(Handler)

        var match: Match {
            switch self {
            case .prompt(let handler): return .prompt(handler)
            case .staged(let handler): return .staged(handler)
            case .blocking(let handler): return .blocking(handler)
            }
        }
    }

    /// Route numbers that are not paths: a request refused before routing, a path no route serves.
    static let invalid = 0
    static let unknown = 1

    private var routes: [(path: String, route: Int, candidates: [(method: String, handler: Route)])] = []
    private var prefixRoutes: [(prefix: String, route: Int, method: String, handler: Route)] = []
    /// Metric labels by route number: `invalid`, `unknown`, then each path (`prefix*` for prefix routes).
    private(set) var names = ["invalid", "unknown"]

    /// Adds a route that may block (store calls, a password hash).
    mutating func add(_ method: String, _ path: String, _ handler: @escaping Handler) {
        add(method, path, route: .blocking(handler))
    }

    /// Adds a route that answers without any I/O.
    mutating func addPrompt(_ method: String, _ path: String, _ handler: @escaping Handler) {
        add(method, path, route: .prompt(handler))
    }

    /// Adds a route whose first store call a worker may ask together with other requests'.
    mutating func addStaged(_ method: String, _ path: String, _ handler: @escaping StagedHandler) {
        add(method, path, route: .staged(handler))
    }

    private mutating func add(_ method: String, _ path: String, route handler: Route) {
        if let index = routes.firstIndex(where: { $0.path == path }) {
            routes[index].candidates.append((method, handler))
        } else {
            routes.append((path, names.count, [(method, handler)]))
            names.append(path)
        }
    }

    /// Routes every path that starts with `prefix` (and is longer) to `handler`, which may block.
    mutating func add(_ method: String, prefix: String, _ handler: @escaping Handler) {
        let name = prefix + "*"
        let route = names.firstIndex(of: name) ?? names.count
        if route == names.count { names.append(name) }
        prefixRoutes.append((prefix, route, method, .blocking(handler)))
    }

    /// The handler for `request` (or the router's own answer), and the route's number for
    /// metrics (`unknown` for a path no route serves: the set of labels stays small whatever
    /// clients send).
    func match(_ request: FastCGIRequest) -> (match: Match, route: Int) {
        let path = request.path
        let candidates: [(method: String, handler: Route)]
        let route: Int
        if let exact = routes.first(where: { $0.path == path }) {
            candidates = exact.candidates
            route = exact.route
        } else {
            let matches = prefixRoutes.filter { path.hasPrefix($0.prefix) && path.count > $0.prefix.count }
            guard let first = matches.first else { return (.answered(Responses.notFound()), Self.unknown) }
            candidates = matches.map { ($0.method, $0.handler) }
            route = first.route
        }
        let method = request.method
        if let match = candidates.first(where: { $0.method == method }) { return (match.handler.match, route) }
        if method == "HEAD", let get = candidates.first(where: { $0.method == "GET" }) { return (get.handler.match, route) }
        var allowed = candidates.map(\.method)
        if let get = allowed.firstIndex(of: "GET"), !allowed.contains("HEAD") { allowed.insert("HEAD", at: get + 1) }
        return (.answered(Responses.methodNotAllowed(allowed: allowed)), route)
    }
}

/// What a staged route does with a request: answer at once, or name the store call it needs
/// next and what it does with the answer (another step). A worker holding several requests
/// asks the calls of all their steps in one round trip (`SessionStore.answer(_:timeouts:)`),
/// round after round until every request is answered; alone, a request asks its own. Either
/// way the route's code is the same. A step's `then` may still make store calls itself where
/// they are rare (an alias followed), but a common follow-up is a step of its own: an unknown
/// id's new session is created in the batch's second round.
enum RouteStep {
    case answered(FastCGIResponse)
    case asking(SessionStoreCall, then: (Result<SessionStoreAnswer, SessionStoreError>) -> RouteStep)
}
