import FastCGIServer
import SessionCore

/// The application on one worker thread: routes requests to the session lifecycle over any
/// `SessionStore`. Made once per worker by `Application` with that worker's own store (and so
/// its own Redis connection); tests make one over `InMemorySessionStore` and call `respond`.
///
/// Each route resolves the presented session at most once, and every answer that carries a
/// `Set-Cookie` carries the id the route resolved or started — never one learnt by following a
/// superseded id (see `SessionManager`).
final class SessionResponder<Store: SessionStore>: FastCGIResponder {
    let configuration: AppConfiguration
    let log: ServerLog
    let manager: SessionManager<Store>
    let cookies: SessionCookieCodec
    let users: UsersFile?
    private var router = Router()
    private var lastStoreLog: [Int] = [0, 0]

    init(configuration: AppConfiguration, store: Store, cookies: SessionCookieCodec, users: UsersFile?, log: ServerLog,
         rotationRetry: RotationRetry) {
        self.configuration = configuration
        self.log = log
        self.users = users
        self.cookies = cookies
        manager = SessionManager(store: store, timeouts: configuration.timeouts, limits: configuration.limits,
                                 rotationGraceSeconds: configuration.rotationGraceSeconds, rotationRetry: rotationRetry)
        router.add("GET", "/count") { [unowned self] in self.count($0) }
        router.add("GET", "/healthz") { [unowned self] _ in self.health() }
        router.add("GET", "/livez") { _ in Responses.alive }
        router.add("POST", "/login") { [unowned self] in self.login($0) }
        router.add("GET", "/me") { [unowned self] in self.me($0) }
        router.add("POST", "/logout") { [unowned self] in self.logout($0) }
        router.add("GET", "/sessions") { [unowned self] in self.listSessions($0) }
        router.add("DELETE", prefix: "/sessions/") { [unowned self] in self.endSession($0) }
        router.add("POST", "/sessions/end") { [unowned self] in self.endSessionFromForm($0) }
        router.add("POST", "/attributes") { [unowned self] in self.changeAttributes($0) }
        router.add("POST", "/admin/revoke-user") { [unowned self] in self.revokeUser($0) }
        router.add("GET", "/") { [unowned self] in self.home($0) }
        router.add("GET", "/auth") { [unowned self] in self.authorize($0) }
        router.add("GET", "/login-redirect") { [unowned self] in self.loginRedirect($0) }
    }

    func respond(to request: FastCGIRequest) -> FastCGIResponse {
        if let problem = request.bodyProblem {
            switch problem {
            case .tooLarge(let limit): return Responses.error(413, "request body larger than \(limit) bytes")
            case .malformedLength: return Responses.error(400, "malformed Content-Length")
            case .truncated: return Responses.error(400, "request body shorter than Content-Length")
            }
        }
        var cookieBytes = 0
        request.params.forEachValue(of: "HTTP_COOKIE") { cookieBytes += $0.count }
        if cookieBytes > configuration.maxCookieHeaderBytes {
            return Responses.error(431, "Cookie headers larger than \(configuration.maxCookieHeaderBytes) bytes")
        }
        return router.route(request)
    }

    /// The session id the request presents: the first well-formed (and, when signing, correctly
    /// signed) value of the session cookie, in every `Cookie` header the client sent (nginx 1.22
    /// passes each one as its own `HTTP_COOKIE` param).
    func presentedID(_ request: FastCGIRequest) -> SessionID? {
        var found: SessionID?
        request.params.forEachValue(of: "HTTP_COOKIE") { header in
            if found == nil { found = cookies.presentedID(cookieHeader: header) }
        }
        return found
    }

    /// `response` with a `Set-Cookie` handing `id` to the browser; a 500 if the cookie cannot be
    /// signed (never an unsigned one).
    func issuing(_ id: SessionID, _ request: FastCGIRequest, on response: FastCGIResponse) -> FastCGIResponse {
        do {
            var response = response
            response.headers.append(("Set-Cookie", try cookies.setCookieHeader(for: id, requestIsHTTPS: request.isHTTPS)))
            return response
        } catch {
            return internalError("\(error)")
        }
    }

    /// `response` with a `Set-Cookie` for `id` only when the browser does not hold it already (a
    /// new session, or an alias followed to a rotated id). A cookie is never re-sent for the id
    /// the request presented: such a response, delivered after a login's response, would put a
    /// replaced id back in the browser.
    func issuing(_ id: SessionID, ifNotPresented presented: SessionID?, _ request: FastCGIRequest,
                 on response: FastCGIResponse) -> FastCGIResponse {
        id == presented ? response : issuing(id, request, on: response)
    }

    /// The `Set-Cookie` value that makes the browser forget the session.
    func expiredCookie(_ request: FastCGIRequest) -> (name: String, value: String) {
        ("Set-Cookie", cookies.expiredCookieHeader(requestIsHTTPS: request.isHTTPS))
    }

    /// `GET /count`: one visit counted in this session, or a new session with count 1.
    private func count(_ request: FastCGIRequest) -> FastCGIResponse {
        do {
            let presented = presentedID(request)
            switch try manager.countVisit(presented: presented) {
            case .counted(let id, let count, _):
                return issuing(id, ifNotPresented: presented, request, on: Responses.json(200, JSON.integerObject("count", count)))
            case .superseded:
                return Responses.superseded()
            }
        } catch {
            return failed(error)
        }
    }

    /// `GET /healthz`: 200 while the store answers, 503 while it does not.
    private func health() -> FastCGIResponse {
        do {
            try manager.store.checkHealth()
            return Responses.json(200, JSON.object([("status", JSON.quoted("ok"))]))
        } catch {
            return failed(.store(error))
        }
    }

    /// Maps a session error to its HTTP answer: an outage is a 503 with `Retry-After`, a store
    /// that answered wrongly is a 500 with a log line of its own; the rest are the client's.
    func failed(_ error: SessionError) -> FastCGIResponse {
        switch error {
        case .store(.unavailable(let why)):
            logAtMostOncePerSecond(slot: 0) { log.warning("store unavailable: \(why)") }
            return Responses.storeUnavailable(retryAfterSeconds: configuration.retryAfterSeconds)
        case .store(.failed(let why)):
            return internalError("store error: \(why)")
        case .notFound: return Responses.error(401, "no session")
        case .invalidAttributeName(let name): return Responses.error(400, "invalid attribute name '\(name.prefix(64))'")
        case .invalidUserID: return Responses.error(400, "invalid user id")
        case .tooLarge: return Responses.error(413, "session size limit exceeded")
        case .revokedDuringLogin: return Responses.error(409, "the user's sessions were just revoked; log in again")
        }
    }

    /// After a write security depends on (login's rotation, logout, ending a session,
    /// revoke-all): waits for replicas where Redis has them, and says so in the answer
    /// (`Session-Replication: unconfirmed`) and the log when they did not confirm in time. The
    /// write itself stands either way.
    func confirmingWrites(_ response: FastCGIResponse, _ what: String) -> FastCGIResponse {
        var response = response
        do {
            switch try manager.store.confirmWrites() {
            case .confirmed, .notReplicated:
                return response
            case .unconfirmed(let required, let acknowledged):
                log.warning("\(what): \(acknowledged) of \(required) replicas confirmed in time; the write stands on the primary only")
                response.headers.append(("Session-Replication", "unconfirmed"))
            }
        } catch {
            log.warning("\(what): could not ask the replicas to confirm: \(error)")
            response.headers.append(("Session-Replication", "unknown"))
        }
        return response
    }

    /// A 500 with its own error line (at most one a second per worker, so a broken store cannot
    /// flood the log). The message never holds a session id.
    func internalError(_ message: String) -> FastCGIResponse {
        logAtMostOncePerSecond(slot: 1) { log.error(message) }
        return Responses.error(500, "internal error")
    }

    private func logAtMostOncePerSecond(slot: Int, _ write: () -> Void) {
        let now = Int(monotonicSeconds())
        guard now != lastStoreLog[slot] else { return }
        lastStoreLog[slot] = now
        write()
    }
}
