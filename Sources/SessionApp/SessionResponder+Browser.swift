import FastCGIServer
import SessionCore
import SessionRedis

/// The browser page and the nginx `auth_request` gateway.
extension SessionResponder {
    /// `GET /`: counts a visit like `/count` and shows the page.
    func home(_ request: FastCGIRequest) -> FastCGIResponse {
        do {
            let visit = try manager.countVisit(presented: presentedID(request))
            let next = FormURLEncoded.parse(Array(request.query.utf8))["next"]
            var response = try page(for: visit.sessionID, count: visit.count, status: 200, message: nil, next: next)
            response.headers.append(("Set-Cookie", cookie(for: visit.sessionID, request)))
            return response
        } catch {
            return failed(error)
        }
    }

    /// The page for the presented session without counting a visit (after a failed login).
    func page(_ request: FastCGIRequest, status: Int, message: String, next: String?) -> FastCGIResponse {
        do {
            guard let record = try manager.resolve(presentedID(request), touch: false) else {
                return Responses.html(status, HomePage.render(HomePage.Model(count: 0, message: message, next: HomePage.safeNext(next))),
                                      contentSecurityPolicy: HomePage.contentSecurityPolicy)
            }
            return try page(for: record.id, count: Int64(record.attributes[SessionManager<RedisSessionStore>.countField] ?? "") ?? 0,
                            status: status, message: message, next: next)
        } catch {
            return failed(error)
        }
    }

    private func page(for id: SessionID, count: Int64, status: Int, message: String?, next: String?) throws(SessionError) -> FastCGIResponse {
        var model = HomePage.Model(count: count, message: message, next: HomePage.safeNext(next))
        if let record = try manager.resolve(id, touch: false), let owner = record.owner {
            model.user = owner.userID
            model.csrfToken = record.csrfToken
            model.currentHandle = record.handle
            model.sessions = try manager.sessions(of: owner.userID)
        }
        return Responses.html(status, HomePage.render(model), contentSecurityPolicy: HomePage.contentSecurityPolicy)
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
    /// `X-Session-Expires-In` (seconds) for a logged-in session, 401 otherwise. It neither slides
    /// the session nor sets a cookie unless `--auth-slides` is given.
    func authorize(_ request: FastCGIRequest) -> FastCGIResponse {
        do {
            guard let record = try manager.resolve(presentedID(request), touch: configuration.authSlides), let owner = record.owner else {
                return FastCGIResponse(status: 401, headers: [("Cache-Control", "no-store")])
            }
            let idleEnd = record.lastSeenAt + Int64(configuration.session.idleTimeoutSeconds)
            let remaining = max(0, min(record.absoluteExpiresAt, idleEnd) - record.now)
            var headers: [(name: String, value: String)] = [
                ("X-Session-User", owner.userID), ("X-Session-Expires-In", String(remaining)), ("Cache-Control", "no-store"),
            ]
            if configuration.authSlides { headers.append(("Set-Cookie", cookie(for: record.id, request))) }
            return FastCGIResponse(status: 204, headers: headers)
        } catch {
            return failed(error)
        }
    }
}
