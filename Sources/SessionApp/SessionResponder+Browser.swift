import FastCGIServer
import SessionCore

/// The browser page and the nginx `auth_request` gateway.
extension SessionResponder {
    /// `GET /`: counts a visit like `/count` and shows the page. One store call for an
    /// anonymous visitor; a logged-in user's page adds two for the session list, whatever its
    /// length (it is capped by `--max-sessions-per-user` anyway).
    func home(_ request: FastCGIRequest) -> FastCGIResponse {
        let next = FormURLEncoded.parse(Array(request.query.utf8))["next"]
        do {
            let presented = presentedID(request)
            switch try manager.visitPage(presented: presented) {
            case .started(let id):
                if presented != nil { noteUnknown() }
                event("created", "session started", session: id, level: .debug)
                let model = HomePage.Model(count: 1, next: HomePage.safeNext(next))
                return issuing(id, request, on: Responses.html(200, HomePage.render(model), contentSecurityPolicy: HomePage.contentSecurityPolicy))
            case .existing(let record):
                return issuing(record.id, ifNotPresented: presented, request, on: try page(for: record, status: 200, message: nil, next: next),
                               secondsLeft: record.secondsLeft)
            case .superseded:
                noteSuperseded()
                return supersededPage()
            }
        } catch {
            return failed(error)
        }
    }

    /// The page for the presented session without counting a visit (after a failed login).
    func page(_ request: FastCGIRequest, status: Int, message: String, next: String?) -> FastCGIResponse {
        do {
            switch try resolve(request, touch: false) {
            case .live(let record): return try page(for: record, status: status, message: message, next: next)
            case .none:
                let model = HomePage.Model(count: 0, message: message, next: HomePage.safeNext(next))
                return Responses.html(status, HomePage.render(model), contentSecurityPolicy: HomePage.contentSecurityPolicy)
            case .superseded: return supersededPage()
            }
        } catch {
            return failed(error)
        }
    }

    private func page(for record: SessionRecord, status: Int, message: String?, next: String?) throws(SessionError) -> FastCGIResponse {
        var model = HomePage.Model(count: record.visitCount, message: message, next: HomePage.safeNext(next))
        if let user = record.user {
            model.user = user
            model.csrfToken = record.csrfToken
            model.currentHandle = record.handle
            model.sessions = try manager.sessions(of: user)
        }
        return Responses.html(status, HomePage.render(model), contentSecurityPolicy: HomePage.contentSecurityPolicy)
    }

    /// The page for a request whose session id was just replaced by a login: no count, no
    /// user, and above all no `Set-Cookie`, so the browser keeps its new cookie.
    private func supersededPage() -> FastCGIResponse {
        let model = HomePage.Model(count: 0, message: "This page was requested with a session that has just been renewed. Reload the page.")
        return Responses.html(409, HomePage.render(model), contentSecurityPolicy: HomePage.contentSecurityPolicy)
    }

    /// `GET /login-redirect`: where nginx sends a browser that `/auth` refused (its `@login`
    /// location passes the original `REQUEST_URI`). Answers `302` to the login page with the
    /// original path as `next`, percent-encoded, so no client byte can reach the `Location`
    /// header unescaped; anything but a same-site path becomes `/`.
    func loginRedirect(_ request: FastCGIRequest) -> FastCGIResponse {
        let original = HomePage.safeNext(request.params["REQUEST_URI"])
        let location = original == "/" ? "/" : "/?next=" + FormURLEncoded.encode(original)
        return FastCGIResponse(status: 302, headers: [("Location", location), ("Cache-Control", "no-store")])
    }

    /// `GET /auth`, for nginx's `auth_request`: 204 with `X-Session-User` and
    /// `X-Session-Expires-In` (seconds) for a logged-in session, 401 otherwise. It slides the
    /// session like any request (unless `--auth-slides no`), and never sets a cookie (nginx does
    /// not pass a subrequest's headers on).
    func authorize(_ request: FastCGIRequest) -> RouteStep {
        resolving(request, touch: configuration.authSlides) { [unowned self] resolution in self.authorize(resolution) }
    }

    private func authorize(_ resolution: Result<SessionManager<Store>.Resolution, SessionError>) -> FastCGIResponse {
        do {
            guard let record = try resolution.get().record, let user = record.user else {
                return FastCGIResponse(status: 401, headers: [("Cache-Control", "no-store")])
            }
            let remaining = max(0, record.expiresAt(idleTimeoutSeconds: configuration.idleTimeoutSeconds) - record.now)
            return FastCGIResponse(status: 204, headers: [
                ("X-Session-User", user), ("X-Session-Expires-In", String(remaining)), ("Cache-Control", "no-store"),
            ])
        } catch {
            return failed(error)
        }
    }
}
