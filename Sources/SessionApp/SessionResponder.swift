import FastCGIServer
import RedisClient
import SessionCore
import SessionRedis

/// The application on one worker thread: owns that thread's Redis connection and routes
/// requests. Made once per worker by `Application`.
final class SessionResponder: FastCGIResponder {
    private let configuration: AppConfiguration
    private let log: ServerLog
    private let store: RedisSessionStore
    private let counter: VisitCounter<RedisSessionStore>
    private let cookieWriter: SessionCookieWriter
    private var router = Router()
    private var lastOutageLog: Int = 0

    init(configuration: AppConfiguration, log: ServerLog) {
        self.configuration = configuration
        self.log = log
        store = RedisSessionStore(connection: RedisConnection(endpoint: configuration.redis), keyPrefix: configuration.keyPrefix)
        counter = VisitCounter(store: store, configuration: configuration.session)
        cookieWriter = SessionCookieWriter(configuration: configuration.session)
        router.add("GET", "/count") { [unowned self] in self.count($0) }
        router.add("GET", "/healthz") { [unowned self] _ in self.health() }
        router.add("GET", "/livez") { _ in Self.alive }
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

    /// `GET /count`: one visit counted in this session, or a new session with count 1.
    private func count(_ request: FastCGIRequest) -> FastCGIResponse {
        let session = configuration.session
        let presented = request.params.withValue(of: "HTTP_COOKIE") { header in
            header.flatMap { session.presentedSessionID(cookieHeaderUTF8: $0) }
        }
        do {
            let visit = try counter.countVisit(presented: presented)
            let cookie = cookieWriter.headerValue(for: visit.sessionID, requestIsHTTPS: request.isHTTPS)
            return Responses.json(200, JSON.integerObject("count", visit.count), extraHeaders: [("Set-Cookie", cookie)])
        } catch {
            return storeFailed(error)
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
            return storeFailed(error)
        }
    }

    private func storeFailed(_ error: SessionStoreError) -> FastCGIResponse {
        // At most one line per second per worker, so an outage cannot flood the log.
        let now = Int(monotonicSeconds())
        if now != lastOutageLog {
            lastOutageLog = now
            log.warning("\(error)")
        }
        return Responses.storeUnavailable(retryAfterSeconds: configuration.retryAfterSeconds)
    }
}
