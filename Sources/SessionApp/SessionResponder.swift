import FastCGIServer
import RedisClient
import SessionCore
import SessionRedis

/// The application on one worker thread: owns that thread's Redis connection and routes
/// requests. Made once per worker by `Application`.
final class SessionResponder: FastCGIResponder {
    let configuration: AppConfiguration
    let log: ServerLog
    let store: RedisSessionStore
    let manager: SessionManager<RedisSessionStore>
    let cookieWriter: SessionCookieWriter
    let codec: CookieCodec
    let users: UsersFile?
    private var router = Router()
    private var lastOutageLog: Int = 0

    init(configuration: AppConfiguration, log: ServerLog, users: UsersFile?) {
        self.configuration = configuration
        self.log = log
        self.users = users
        store = RedisSessionStore(connection: RedisConnection(endpoint: configuration.redisEndpoint),
                                  keyPrefix: configuration.keyPrefix, userKeyPrefix: configuration.userKeyPrefix,
                                  indexLifetimeSeconds: configuration.absoluteTimeoutSeconds + configuration.rotationGraceSeconds + 60)
        manager = SessionManager(store: store, timeouts: configuration.timeouts, limits: configuration.limits,
                                 rotationGraceSeconds: configuration.rotationGraceSeconds)
        cookieWriter = SessionCookieWriter(configuration: configuration.session)
        codec = CookieCodec(signingKeys: configuration.cookieSigningKeys.map { Array($0.utf8) })
        router.add("GET", "/count") { [unowned self] in self.count($0) }
        router.add("GET", "/healthz") { [unowned self] _ in self.health() }
        router.add("GET", "/livez") { _ in Self.alive }
        router.add("POST", "/login") { [unowned self] in self.login($0) }
        router.add("GET", "/me") { [unowned self] in self.me($0) }
        router.add("POST", "/logout") { [unowned self] in self.logout($0) }
        router.add("GET", "/sessions") { [unowned self] in self.listSessions($0) }
        router.add("DELETE", prefix: "/sessions/") { [unowned self] in self.endSession($0) }
        router.add("POST", "/attributes") { [unowned self] in self.changeAttributes($0) }
        router.add("POST", "/admin/revoke-user") { [unowned self] in self.revokeUser($0) }
        router.add("GET", "/") { [unowned self] in self.home($0) }
        router.add("GET", "/auth") { [unowned self] in self.authorize($0) }
        router.add("GET", "/login-redirect") { [unowned self] in self.loginRedirect($0) }
        router.add("POST", "/sessions/end") { [unowned self] in self.endSessionFromForm($0) }
    }

    func respond(to request: FastCGIRequest) -> FastCGIResponse {
        if let problem = request.bodyProblem {
            switch problem {
            case .tooLarge(let limit): return Responses.error(413, "request body larger than \(limit) bytes")
            case .malformedLength: return Responses.error(400, "malformed Content-Length")
            case .truncated: return Responses.error(400, "request body shorter than Content-Length")
            }
        }
        if let length = request.params.length(of: "HTTP_COOKIE"), length > configuration.maxCookieHeaderBytes {
            return Responses.error(431, "Cookie header larger than \(configuration.maxCookieHeaderBytes) bytes")
        }
        return router.route(request)
    }

    /// The session id the request presents (well-formed and, when signing, correctly signed).
    func presentedID(_ request: FastCGIRequest) -> SessionID? {
        let name = configuration.session.cookieName
        let codec = self.codec
        return request.params.withValue(of: "HTTP_COOKIE") { header in
            header.flatMap { codec.presentedID(cookieName: name, header: $0) }
        }
    }

    /// The `Set-Cookie` value handing `id` to the browser.
    func cookie(for id: SessionID, _ request: FastCGIRequest) -> String {
        codec.isSigning
            ? cookieWriter.headerValue(value: codec.encode(id), requestIsHTTPS: request.isHTTPS)
            : cookieWriter.headerValue(for: id, requestIsHTTPS: request.isHTTPS)
    }

    /// `GET /count`: one visit counted in this session, or a new session with count 1.
    private func count(_ request: FastCGIRequest) -> FastCGIResponse {
        do {
            let visit = try manager.countVisit(presented: presentedID(request))
            return Responses.json(200, JSON.integerObject("count", visit.count),
                                  extraHeaders: [("Set-Cookie", cookie(for: visit.sessionID, request))])
        } catch {
            return failed(error)
        }
    }

    /// `GET /livez`: the process serves requests; touches nothing else (liveness, and the
    /// benchmark's FastCGI ceiling).
    private static let alive = Responses.json(200, JSON.object([("status", JSON.quoted("alive"))]))

    /// `GET /healthz`: 200 while Redis answers, 503 while it does not.
    private func health() -> FastCGIResponse {
        do {
            try store.checkHealth()
            return Responses.json(200, JSON.object([("status", JSON.quoted("ok"))]))
        } catch {
            return failed(.store(error))
        }
    }

    /// Maps a session error to its HTTP answer; store outages become 503 with Retry-After.
    func failed(_ error: SessionError) -> FastCGIResponse {
        switch error {
        case .store(let storeError):
            // At most one line per second per worker, so an outage cannot flood the log.
            let now = Int(monotonicSeconds())
            if now != lastOutageLog {
                lastOutageLog = now
                log.warning("\(storeError)")
            }
            return Responses.storeUnavailable(retryAfterSeconds: configuration.retryAfterSeconds)
        case .notFound: return Responses.error(401, "no session")
        case .invalidAttributeName(let name): return Responses.error(400, "invalid attribute name '\(name.prefix(64))'")
        case .invalidUserID: return Responses.error(400, "invalid user id")
        case .tooLarge: return Responses.error(413, "session size limit exceeded")
        }
    }
}
