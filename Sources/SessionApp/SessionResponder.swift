import FastCGIServer
import Glibc
import Logging
import SessionCore
import SessionRedis

/// The application on one worker thread: routes requests to the session lifecycle over any
/// `SessionStore`. Made once per worker by `Application` with that worker's own store (and so
/// its own Redis connection); tests make one over `InMemorySessionStore` and call `respond`.
///
/// Each route resolves the presented session at most once, and every answer that carries a
/// `Set-Cookie` carries the id the route resolved or started — never one learnt by following a
/// superseded id (see `SessionManager`).
final class SessionResponder<Store: SessionStore>: FastCGIResponder {
    let configuration: AppConfiguration
    let log: Logger
    let manager: SessionManager<Store>
    /// Settings that SIGHUP reloads (users, signing keys, admin token), refreshed per request.
    private let settingsCell: SettingsCell
    private var current: (generation: Int, settings: ReloadableSettings)
    let metrics: AppMetrics
    /// This worker's request counters (made once the routes are known).
    private var requestCounters: RequestCounters
    /// By route number: whether the route cannot succeed without the store (so its success
    /// ends an outage).
    private var needsStore: [Bool] = []
    /// Session ids appear in logs only as this keyed hash.
    let hasher: LogSessionHasher
    /// The instance's bound on password checks at once, shared by every worker.
    let passwordChecks: PasswordCheckGate
    /// Builds the metrics exposition (with the FastCGI server's counters), for `GET /metrics`.
    private let exposition: @Sendable () -> [UInt8]
    private var router = Router()
    private var lastStoreLog: [Int] = [0, 0, 0]
    /// With encryption at rest: the process's count of sealed values that did not open, and
    /// the part of it this worker has logged about (a count that moves is worth a line: users
    /// look logged out, and the log should say why).
    private let unopenedValues: UnopenedValueCount?
    private var unopenedLogged = 0

    var cookies: SessionCookieCodec { current.settings.cookies }
    var users: UsersFile? { current.settings.users }
    var adminToken: String? { current.settings.adminToken }
    var trustedLoginKeys: [[UInt8]] { current.settings.trustedLoginKeys }

    init(configuration: AppConfiguration, store: Store, settings: SettingsCell, log: Logger, metrics: AppMetrics,
         hasher: LogSessionHasher, rotationRetry: RotationRetry, passwordChecks: PasswordCheckGate,
         exposition: @escaping @Sendable () -> [UInt8], unopenedValues: UnopenedValueCount? = nil) {
        self.configuration = configuration
        self.unopenedValues = unopenedValues
        self.passwordChecks = passwordChecks
        self.log = log
        self.settingsCell = settings
        current = (-1, ReloadableSettings(users: nil, cookies: SessionCookieCodec(configuration: configuration.session), adminToken: nil))
        settings.refresh(&current)
        self.metrics = metrics
        requestCounters = RequestCounters(routes: 0)
        self.hasher = hasher
        self.exposition = exposition
        manager = SessionManager(store: store, timeouts: configuration.timeouts, limits: configuration.limits,
                                 rotationGraceSeconds: configuration.rotationGraceSeconds, rotationRetry: rotationRetry)
        router.addStaged("GET", "/count") { [unowned self] in self.count($0) }
        router.add("GET", "/healthz") { [unowned self] _ in self.health() }
        router.addPrompt("GET", "/livez") { _ in Responses.alive }
        router.add("POST", "/login") { [unowned self] in self.login($0) }
        router.addStaged("GET", "/me") { [unowned self] in self.me($0) }
        router.add("POST", "/logout") { [unowned self] in self.logout($0) }
        router.add("GET", "/sessions") { [unowned self] in self.listSessions($0) }
        router.add("DELETE", prefix: "/sessions/") { [unowned self] in self.endSession($0) }
        router.add("POST", "/sessions/end") { [unowned self] in self.endSessionFromForm($0) }
        router.add("POST", "/attributes") { [unowned self] in self.changeAttributes($0) }
        router.add("POST", "/admin/revoke-user") { [unowned self] in self.revokeUser($0) }
        router.add("GET", "/") { [unowned self] in self.home($0) }
        router.addStaged("GET", "/auth") { [unowned self] in self.authorize($0) }
        router.addPrompt("GET", "/login-redirect") { [unowned self] in self.loginRedirect($0) }
        router.add("GET", "/trusted-login") { [unowned self] in self.trustedLogin($0) }
        router.add("GET", "/metrics") { [unowned self] in self.scrape($0) }
        requestCounters = metrics.requests.makeWorkerCounters(routes: router.names)
        // (Not /healthz: a PING can succeed where sessions cannot, Redis full or one node down.)
        let needingStore: Set<String> = ["/count", "/me", "/auth", "/sessions", "/attributes"]
        needsStore = router.names.map { needingStore.contains($0) }
    }

    /// Answers one request whatever its route: the worker's way for routes that may block, and
    /// for tests.
    func respond(to request: FastCGIRequest) -> FastCGIResponse {
        let started = Self.monotonicNanoseconds()
        settingsCell.refresh(&current)
        let (match, route) = self.match(request)
        let response: FastCGIResponse
        switch match {
        case .answered(let answered): response = answered
        case .prompt(let handler), .blocking(let handler): response = handler(request)
        case .staged(let handler):
            var step = handler(request)
            while case .asking(let call, let then) = step {
                step = then(Result { () throws(SessionStoreError) in try manager.store.answer(call, timeouts: manager.timeouts) })
            }
            guard case .answered(let answered) = step else { preconditionFailure("a step is answered or asking") }
            response = answered
        }
        record(request, route: route, response, started: started)
        return response
    }

    /// Answers, of requests that arrived together, those whose routes need no I/O, and the
    /// staged routes (`/count`, `/me`, `/auth`), whose store calls are asked in one round trip
    /// for the whole batch (a second one for the few that need another call: an unknown id's
    /// new session). Routes that may block are left to `respond(to:)`: the worker serves them
    /// with its place among the active workers handed on, so a login's password hash or a
    /// page's round trips never hold back the hot routes.
    func respondPromptly(to requests: [FastCGIRequest], deliver: (Int, FastCGIResponse) -> Void) {
        let started = Self.monotonicNanoseconds()
        settingsCell.refresh(&current)
        var asking: [(index: Int, route: Int, then: (Result<SessionStoreAnswer, SessionStoreError>) -> RouteStep)] = []
        var calls: [SessionStoreCall] = []
        func take(_ step: RouteStep, index: Int, route: Int) {
            switch step {
            case .answered(let response):
                record(requests[index], route: route, response, started: started)
                deliver(index, response)
            case .asking(let call, let then):
                asking.append((index, route, then))
                calls.append(call)
            }
        }
        for (index, request) in requests.enumerated() {
            let (match, route) = self.match(request)
            switch match {
            case .answered(let answered): take(.answered(answered), index: index, route: route)
            case .prompt(let handler): take(.answered(handler(request)), index: index, route: route)
            case .blocking: continue
            case .staged(let handler): take(handler(request), index: index, route: route)
            }
        }
        // Each round answers every call asked; a route's steps are few (two at most for the
        // staged routes), so the rounds end.
        while !calls.isEmpty {
            var answers = manager.store.answer(calls, timeouts: manager.timeouts)
            // Every call gets an answer: a request left without one would be served again by
            // `respond(to:)`, sending its call (a write) a second time.
            while answers.count < calls.count { answers.append(.failure(.failed("the store gave fewer answers than calls"))) }
            let round = zip(asking, answers)
            asking.removeAll(keepingCapacity: true)
            calls.removeAll(keepingCapacity: true)
            for (waiting, answer) in round {
                take(waiting.then(answer), index: waiting.index, route: waiting.route)
            }
        }
    }

    /// Routes that may block are left by `respondPromptly` to `respond(to:)`.
    func mayBlock(_ request: FastCGIRequest) -> Bool {
        if case .blocking = match(request).match { return true }
        return false
    }

    private func record(_ request: FastCGIRequest, route: Int, _ response: FastCGIResponse, started: Int64) {
        let elapsed = Self.monotonicNanoseconds() - started
        requestCounters.record(route: route, status: response.status, nanoseconds: elapsed)
        // A success of a route that cannot succeed without the store ends an outage.
        if (200..<300).contains(response.status), needsStore.indices.contains(route), needsStore[route],
           let lasted = metrics.storeOutage.noteAnswered() {
            log.info("store available again; unavailable for \(lasted) ms from the first failure to the last", metadata: ["event": "store_recovered"])
        }
        if let unopenedValues, unopenedValues.value > unopenedLogged {
            let total = unopenedValues.value
            logAtMostOncePerSecond(slot: 2) {
                unopenedLogged = total
                log.warning("sealed session values did not open (\(total) since start): a key missing from this instance's ring (keys are read at start only), or values altered in Redis; those users look logged out",
                            metadata: ["event": "sealed_value_unopened"])
            }
        }
        if log.logLevel <= .debug {
            log.debug("request", metadata: ["route": "\(router.names[route])", "method": "\(request.method)", "status": "\(response.status)",
                                            "us": "\(elapsed / 1000)"])
        }
    }

    private func match(_ request: FastCGIRequest) -> (match: Router.Match, route: Int) {
        if let problem = request.bodyProblem {
            switch problem {
            case .tooLarge(let limit): return (.answered(Responses.error(413, "request body larger than \(limit) bytes")), Router.invalid)
            case .malformedLength: return (.answered(Responses.error(400, "malformed Content-Length")), Router.invalid)
            case .truncated: return (.answered(Responses.error(400, "request body shorter than Content-Length")), Router.invalid)
            }
        }
        var cookieBytes = 0
        request.params.forEachValue(of: "HTTP_COOKIE") { cookieBytes += $0.count }
        if cookieBytes > configuration.maxCookieHeaderBytes {
            return (.answered(Responses.error(431, "Cookie headers larger than \(configuration.maxCookieHeaderBytes) bytes")), Router.invalid)
        }
        return router.match(request)
    }

    /// `GET /metrics`: the Prometheus text exposition, only for the internal nginx server (it
    /// sets the FastCGI param `SESSION_FCGI_INTERNAL=1`, which no client can send); 404 to
    /// everyone else, as for a path that does not exist.
    private func scrape(_ request: FastCGIRequest) -> FastCGIResponse {
        guard request.params.has("SESSION_FCGI_INTERNAL", equalTo: "1") else { return Responses.notFound() }
        return FastCGIResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Cache-Control", "no-store")],
                               body: exposition())
    }

    private static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// The session id the request presents: the first well-formed (and, when signing, correctly
    /// signed) value of the session cookie, in every `Cookie` header the client sent (nginx 1.22
    /// passes each one as its own `HTTP_COOKIE` param).
    func presentedID(_ request: FastCGIRequest) -> SessionID? {
        var found: SessionID?
        var forged = false, malformed = false
        let cookies = self.cookies
        request.params.forEachValue(of: "HTTP_COOKIE") { header in
            guard found == nil else { return }
            switch cookies.inspect(cookieHeader: header) {
            case .valid(let id): found = id
            case .forged: forged = true
            case .malformed: malformed = true
            case .absent: break
            }
        }
        if found == nil && forged {
            metrics.refused("forged")
            log.debug("forged session cookie refused", metadata: ["event": "forged_id"])
        } else if found == nil && malformed {
            // Not an id of this deployment's form: another length or alphabet, or an unsigned
            // id where ids are signed (every cookie from before signing was turned on).
            metrics.refused("malformed")
            log.debug("malformed session cookie ignored", metadata: ["event": "malformed_id"])
        }
        return found
    }

    /// The presented session, resolved once, with unknown and superseded ids counted.
    func resolve(_ request: FastCGIRequest, touch: Bool = true) throws(SessionError) -> SessionManager<Store>.Resolution {
        try resolved(presentedID(request), touch: touch, answered: nil).get()
    }

    /// `resolve(request, touch:)` as a staged step: `then` gets the resolution or its error.
    func resolving(_ request: FastCGIRequest, touch: Bool,
                   then finish: @escaping (Result<SessionManager<Store>.Resolution, SessionError>) -> FastCGIResponse) -> RouteStep {
        let presented = presentedID(request)
        guard let call = manager.resolveCall(presented, touch: touch) else {
            return .answered(finish(resolved(presented, touch: touch, answered: nil)))
        }
        return .asking(call) { [unowned self] answer in .answered(finish(self.resolved(presented, touch: touch, answered: answer))) }
    }

    private func resolved(_ presented: SessionID?, touch: Bool, answered: Result<SessionStoreAnswer, SessionStoreError>?)
        -> Result<SessionManager<Store>.Resolution, SessionError> {
        let resolution: SessionManager<Store>.Resolution
        do {
            resolution = try manager.resolve(presented, touch: touch, answered: answered)
        } catch {
            return .failure(error)
        }
        switch resolution {
        case .none where presented != nil: noteUnknown()
        case .superseded: noteSuperseded()
        default: break
        }
        return .success(resolution)
    }

    /// A well-formed id that names no live session. With signed cookies its valid signature
    /// proves this deployment issued it, so it is one that expired (or was ended or revoked):
    /// counted as `expired`. Unsigned, an expired id and one never issued look alike (Redis
    /// drops an expired session whole, by its TTL): both count as `unknown`.
    func noteUnknown() {
        if cookies.signer != nil {
            metrics.refused("expired")
            log.debug("expired or ended session id", metadata: ["event": "expired_id"])
        } else {
            metrics.refused("unknown")
            log.debug("unknown or expired session id", metadata: ["event": "unknown_id"])
        }
    }

    func noteSuperseded() {
        metrics.refused("superseded")
        log.debug("request with an id replaced by a login", metadata: ["event": "superseded_id"])
    }

    /// Logs a lifecycle event with the session's keyed hash (never its id). The hash (an HMAC)
    /// and the metadata are made only when the line is written: a new `/count` session logs at
    /// debug level, and computing them for nothing cost a third of its instructions.
    func event(_ name: String, _ message: @autoclosure () -> Logger.Message, session: SessionID? = nil, user: String? = nil,
               extra: [String: String] = [:], level: Logger.Level = .info) {
        metrics.event(name)
        guard log.logLevel <= level else { return }
        var metadata: Logger.Metadata = ["event": "\(name)"]
        if let session { metadata["session"] = "\(hasher.hash(session))" }
        if let user { metadata["user"] = "\(user)" }
        for (key, value) in extra { metadata[key] = "\(value)" }
        log.log(level: level, message(), metadata: metadata)
    }

    /// `response` with a `Set-Cookie` handing `id` to the browser, its `Max-Age` cut to
    /// `secondsLeft` when given; a 500 if the cookie cannot be signed (never an unsigned one).
    func issuing(_ id: SessionID, _ request: FastCGIRequest, on response: FastCGIResponse, secondsLeft: Int? = nil) -> FastCGIResponse {
        do {
            var response = response
            response.headers.append(("Set-Cookie", try cookies.setCookieHeader(for: id, requestIsHTTPS: request.isHTTPS, secondsLeft: secondsLeft)))
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
                 on response: FastCGIResponse, secondsLeft: Int? = nil) -> FastCGIResponse {
        id == presented ? response : issuing(id, request, on: response, secondsLeft: secondsLeft)
    }

    /// The `Set-Cookie` value that makes the browser forget the session.
    func expiredCookie(_ request: FastCGIRequest) -> (name: String, value: String) {
        ("Set-Cookie", cookies.expiredCookieHeader(requestIsHTTPS: request.isHTTPS))
    }

    /// `GET /count`: one visit counted in this session, or a new session with count 1 (for an
    /// id the store does not know, created in a step of its own).
    private func count(_ request: FastCGIRequest) -> RouteStep {
        let presented = presentedID(request)
        let call = manager.countVisitCall(presented: presented)
        return .asking(call) { [unowned self] answer in
            let progress: SessionManager<Store>.VisitProgress
            do throws(SessionError) {
                progress = try manager.countVisitProgress(presented: presented, asked: call, answered: answer)
            } catch {
                return .answered(failed(error))
            }
            switch progress {
            case .done(let visit): return .answered(countVisit(request, presented: presented, .success(visit)))
            case .creating(let create):
                return .asking(create) { [unowned self] answer in
                    .answered(countVisit(request, presented: presented, Result { () throws(SessionError) in
                        try manager.countVisitCreated(create, answered: answer)
                    }))
                }
            }
        }
    }

    private func countVisit(_ request: FastCGIRequest, presented: SessionID?,
                            _ visit: Result<SessionManager<Store>.Visit, SessionError>) -> FastCGIResponse {
        do {
            switch try visit.get() {
            case .counted(let id, let count, let isNew):
                if isNew {
                    if presented != nil { noteUnknown() }
                    event("created", "session started", session: id, level: .debug)
                }
                return issuing(id, ifNotPresented: presented, request, on: Responses.json(200, JSON.integerObject("count", count)))
            case .superseded:
                noteSuperseded()
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
            metrics.storeError("unavailable")
            metrics.storeOutage.noteUnavailable()
            logAtMostOncePerSecond(slot: 0) { log.warning("store unavailable: \(why)", metadata: ["event": "store_unavailable"]) }
            return Responses.storeUnavailable(retryAfterSeconds: configuration.retryAfterSeconds)
        case .store(.failed(let why)):
            metrics.storeError("failed")
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
            case .confirmed:
                metrics.replicaWait("confirmed")
                return response
            case .notReplicated:
                return response
            case .unconfirmed(let required, let acknowledged):
                metrics.replicaWait("unconfirmed")
                log.warning("\(what): \(acknowledged) of \(required) replicas confirmed in time; the write stands on the primary only",
                            metadata: ["event": "replication_unconfirmed"])
                response.headers.append(("Session-Replication", "unconfirmed"))
            }
        } catch {
            metrics.replicaWait("unknown")
            log.warning("\(what): could not ask the replicas to confirm: \(error)", metadata: ["event": "replication_unknown"])
            response.headers.append(("Session-Replication", "unknown"))
        }
        return response
    }

    /// A 500 with its own error line (at most one a second per worker, so a broken store cannot
    /// flood the log). The message never holds a session id.
    func internalError(_ message: String) -> FastCGIResponse {
        logAtMostOncePerSecond(slot: 1) { log.error("\(message)", metadata: ["event": "internal_error"]) }
        return Responses.error(500, "internal error")
    }

    private func logAtMostOncePerSecond(slot: Int, _ write: () -> Void) {
        let now = Int(monotonicSeconds())
        guard now != lastStoreLog[slot] else { return }
        lastStoreLog[slot] = now
        write()
    }
}
