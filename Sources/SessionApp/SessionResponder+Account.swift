import FastCGIServer
import SessionCore
import SessionCrypto

/// Login, logout, the user's sessions, attributes and the admin revocation route.
extension SessionResponder {
    /// `POST /login` (JSON or form: `user`, `password`): checks the users file, then rotates the
    /// session to a new id marked with the user (the old id becomes a tombstone).
    func login(_ request: FastCGIRequest) -> FastCGIResponse {
        if let refusal = crossSiteRefusal(request) { return refusal }
        guard let users else { return Responses.error(404, "login is not configured") }
        guard let fields = RequestBody.fields(request.body, contentType: request.params["CONTENT_TYPE"]) else {
            return Responses.error(400, "body must be a JSON object or a form")
        }
        guard let user = fields["user"]?.string, let password = fields["password"]?.string, !user.isEmpty else {
            return Responses.error(400, "user and password are required")
        }
        var matches = false
        let limit = configuration.loginFailureLimit
        if SessionNames.isValidUserID(user), password.utf8.count <= 1024 {
            // Once this login has its turn at the password gate (a busy answer asks the store
            // nothing), the attempt is counted against the user name's limit in one step with
            // the check of that limit, before the password is: past the limit no guess is
            // checked, however many run at once, and a store that cannot count checks none.
            let outcome = passwordChecks.run { () -> Result<Bool, LoginRefusal> in
                if let limit {
                    do throws(SessionStoreError) {
                        if case .refused(let secondsLeft) = try manager.store.countLoginAttempt(
                            Self.loginAccount(user), limit: limit.count, windowSeconds: limit.windowSeconds) {
                            return .failure(.throttled(secondsLeft: secondsLeft))
                        }
                    } catch {
                        return .failure(.store(error))
                    }
                }
                return .success(users.check(user: user, password: password))
            }
            switch outcome {
            case nil: return loginBusy(request, next: fields["next"]?.string)
            case .failure(.throttled(let secondsLeft))?:
                return loginThrottled(request, user: user, retryAfterSeconds: secondsLeft, next: fields["next"]?.string)
            case .failure(.store(let error))?: return failed(.store(error))
            case .success(let checked)?: matches = checked
            }
        }
        guard matches else {
            // For an operator (fail2ban, an alert on one account): the client's address, and
            // the user when it is one of the file's (a name that is not may be a password typed
            // in the wrong field, which is never logged).
            event("login_refused", "login refused", user: users.hashes[user] == nil ? nil : user,
                  extra: ["client": request.params["REMOTE_ADDR"] ?? "unknown", "known_user": users.hashes[user] == nil ? "no" : "yes"])
            if isFormPost(request) { return page(request, status: 401, message: "Wrong user or password.", next: fields["next"]?.string) }
            return Responses.error(401, "wrong user or password")
        }
        // Only failed attempts count: a right password takes its attempt back (the count is
        // not reset, which would tell a guesser that the name is a user's who just logged in).
        if limit != nil { try? manager.store.uncountLoginAttempt(Self.loginAccount(user)) }
        return completeLogin(user, request) { record in
            isFormPost(request)
                ? Responses.seeOther(HomePage.safeNext(fields["next"]?.string))
                : Responses.json(200, JSON.object([("user", JSON.quoted(user)), ("csrfToken", JSON.quoted(record.csrfToken ?? ""))]))
        }
    }

    /// The login itself, once the user is known (a password checked, an application's
    /// assertion verified): the presented session (or a new one) rotated to a new id marked
    /// with `user` and indexed for revoke-all; `answer` with the new cookie, once replicas
    /// confirmed where there are any.
    func completeLogin(_ user: String, _ request: FastCGIRequest, extra: [String: String] = [:],
                       answer: (SessionRecord) -> FastCGIResponse) -> FastCGIResponse {
        do {
            let current = try resolve(request, touch: false)
            let record = try manager.login(user: user, current: current, userAgent: request.params["HTTP_USER_AGENT"])
            event("login", "login", session: record.id, user: user, extra: extra)
            if let previous = current.record { event("rotated", "session id rotated at login", session: previous.id, level: .debug) }
            return confirmingWrites(issuing(record.id, request, on: answer(record), secondsLeft: record.secondsLeft), "login")
        } catch {
            return failed(error)
        }
    }

    /// The name a user name's login attempts are counted under: a hash, so that a name that is
    /// no user's (perhaps a password typed in the wrong field) is never stored as it came, and
    /// the same on every instance whatever its keys.
    static func loginAccount(_ user: String) -> String {
        Base64.encode(SessionCrypto.sha256(Array("session-store login attempts\n\(user)".utf8)))
    }

    /// Why a login was answered without a password check.
    private enum LoginRefusal: Error {
        case throttled(secondsLeft: Int)
        case store(SessionStoreError)
    }

    /// A login of a user name that has had `--login-failure-limit` failed logins in its window
    /// (someone guessing that account's password, from however many addresses): 429 with
    /// `Retry-After` the rest of the window, without checking the password, whether the name is
    /// a user's or not (the answer tells nothing about who exists).
    private func loginThrottled(_ request: FastCGIRequest, user: String, retryAfterSeconds: Int, next: String?) -> FastCGIResponse {
        let known = users?.hashes[user] != nil
        event("login_throttled", "login refused: too many failed logins of this user", user: known ? user : nil,
              extra: ["client": request.params["REMOTE_ADDR"] ?? "unknown", "known_user": known ? "yes" : "no"])
        return loginRefusedUnchecked(request, status: 429, retryAfterSeconds: max(1, retryAfterSeconds), next: next,
                                     page: "Too many failed logins for this user. Try again later.",
                                     json: "too many failed logins for this user; try again later")
    }

    /// A login that found every password check busy for `--login-wait-ms` (a flood of logins,
    /// most likely): 503 with `Retry-After`, at once, without checking the password.
    private func loginBusy(_ request: FastCGIRequest, next: String?) -> FastCGIResponse {
        event("login_busy", "login refused: every password check busy", level: .debug)
        return loginRefusedUnchecked(request, status: 503, retryAfterSeconds: configuration.retryAfterSeconds, next: next,
                                     page: "Too many logins at this moment. Try again in a few seconds.",
                                     json: "too many logins at once; try again")
    }

    /// A login answered without a password check, with `Retry-After`: for a form, the login
    /// form alone (without asking Redis for the session: a flood gets cheap answers), else JSON.
    private func loginRefusedUnchecked(_ request: FastCGIRequest, status: Int, retryAfterSeconds: Int, next: String?,
                                       page: String, json: String) -> FastCGIResponse {
        let retryAfter = ("Retry-After", String(retryAfterSeconds))
        if isFormPost(request) {
            let model = HomePage.Model(count: 0, message: page, next: HomePage.safeNext(next))
            var response = Responses.html(status, HomePage.render(model), contentSecurityPolicy: HomePage.contentSecurityPolicy)
            response.headers.append(retryAfter)
            return response
        }
        return Responses.error(status, json, extraHeaders: [retryAfter])
    }

    /// `GET /me`: who is logged in, with the session's times, CSRF token and attributes; 401
    /// otherwise.
    func me(_ request: FastCGIRequest) -> RouteStep {
        resolving(request, touch: true) { [unowned self] resolution in self.me(resolution) }
    }

    private func me(_ resolution: Result<SessionManager<Store>.Resolution, SessionError>) -> FastCGIResponse {
        do {
            guard let record = try resolution.get().record, let user = record.user else {
                return Responses.error(401, "not logged in")
            }
            return Responses.json(200, JSON.object([
                ("user", JSON.quoted(user)),
                ("handle", JSON.quoted(record.handle)),
                ("created", String(record.createdAt)),
                ("lastSeen", String(record.lastSeenAt)),
                ("expiresAt", String(record.expiresAt(idleTimeoutSeconds: configuration.idleTimeoutSeconds))),
                ("absoluteExpiresAt", String(record.absoluteExpiresAt)),
                ("count", String(record.visitCount)),
                ("csrfToken", JSON.quoted(record.csrfToken ?? "")),
                ("attributes", JSON.stringObject(record.attributes)),
            ]))
        } catch {
            return failed(error)
        }
    }

    /// `POST /logout`: ends the session everywhere and expires the cookie. An anonymous or
    /// unknown session needs no CSRF token (there is nothing to protect); a logged-in one does.
    /// A superseded id is answered without touching the cookie: it is the browser's in-flight
    /// request from before a login, and expiring the cookie would log the user out.
    func logout(_ request: FastCGIRequest) -> FastCGIResponse {
        if let refusal = crossSiteRefusal(request) { return refusal }
        do {
            let record: SessionRecord
            switch try resolve(request, touch: false) {
            case .superseded: return Responses.superseded()
            case .none: return loggedOut(request)
            case .live(let live): record = live
            }
            if record.user != nil, let refusal = csrfRefusal(request, record: record) { return refusal }
            try manager.end(record)
            event("destroyed", "logout", session: record.id, user: record.user)
            return confirmingWrites(loggedOut(request), "logout")
        } catch {
            return failed(error)
        }
    }

    private func loggedOut(_ request: FastCGIRequest) -> FastCGIResponse {
        isFormPost(request)
            ? Responses.seeOther("/", extraHeaders: [expiredCookie(request)])
            : Responses.json(200, JSON.object([("loggedOut", "true")]), extraHeaders: [expiredCookie(request)])
    }

    /// `GET /sessions`: the logged-in user's active sessions (two store calls, however many).
    func listSessions(_ request: FastCGIRequest) -> FastCGIResponse {
        do {
            guard let current = try resolve(request).record, let user = current.user else {
                return Responses.error(401, "not logged in")
            }
            let items = try manager.sessions(of: user).map { record in
                String(decoding: JSON.object([
                    ("handle", JSON.quoted(record.handle)),
                    ("created", String(record.createdAt)),
                    ("lastSeen", String(record.lastSeenAt)),
                    ("userAgent", record.userAgent.map(JSON.quoted) ?? "null"),
                    ("current", record.handle == current.handle ? "true" : "false"),
                ]), as: UTF8.self)
            }
            return Responses.json(200, JSON.object([("sessions", "[" + items.joined(separator: ",") + "]")]))
        } catch {
            return failed(error)
        }
    }

    /// `DELETE /sessions/<handle>`: ends one of the user's own sessions.
    func endSession(_ request: FastCGIRequest) -> FastCGIResponse {
        let handle = String(request.path.dropFirst("/sessions/".count))
        do {
            guard let current = try resolve(request, touch: false).record, let user = current.user else {
                return Responses.error(401, "not logged in")
            }
            if let refusal = csrfRefusal(request, record: current) { return refusal }
            guard SessionID(validating: handle) != nil, try manager.end(handle: handle, of: user) else {
                return Responses.error(404, "no such session")
            }
            event("destroyed", "session ended by its user", user: user)
            return confirmingWrites(FastCGIResponse(status: 204, headers: [("Cache-Control", "no-store")]), "end session")
        } catch {
            return failed(error)
        }
    }

    /// `POST /sessions/end` (form: `handle`, `csrf_token`): the page's "end this session" button.
    func endSessionFromForm(_ request: FastCGIRequest) -> FastCGIResponse {
        let fields = RequestBody.fields(request.body, contentType: request.params["CONTENT_TYPE"]) ?? [:]
        do {
            guard let current = try resolve(request, touch: false).record, let user = current.user else {
                return Responses.seeOther("/")
            }
            if let refusal = csrfRefusal(request, record: current) { return refusal }
            if let handle = fields["handle"]?.string, SessionID(validating: handle) != nil, try manager.end(handle: handle, of: user) {
                event("destroyed", "session ended by its user", user: user)
                return confirmingWrites(Responses.seeOther("/"), "end session")
            }
            return Responses.seeOther("/")
        } catch {
            return failed(error)
        }
    }

    /// `POST /attributes` (JSON object; `null` removes): changes the logged-in session's
    /// attributes as one delta.
    func changeAttributes(_ request: FastCGIRequest) -> FastCGIResponse {
        guard let fields = FlatJSON.parseObject(request.body) else { return Responses.error(400, "body must be a flat JSON object") }
        do {
            guard let current = try resolve(request, touch: false).record, current.user != nil else {
                return Responses.error(401, "not logged in")
            }
            if let refusal = csrfRefusal(request, record: current) { return refusal }
            var set: [(name: String, value: String)] = []
            var remove: [String] = []
            for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
                switch value {
                case .null: remove.append(name)
                case .string(let text): set.append((name, text))
                case .number(let text): set.append((name, text))
                case .bool(let flag): set.append((name, flag ? "true" : "false"))
                }
            }
            try manager.change(current.id, set: set, remove: remove)
            return Responses.json(200, JSON.object([("updated", String(set.count + remove.count))]))
        } catch {
            return failed(error)
        }
    }

    /// `POST /admin/revoke-user` with `Authorization: Bearer <admin token>`: ends every session of
    /// the user on every instance at once. Not routed by the public nginx server.
    func revokeUser(_ request: FastCGIRequest) -> FastCGIResponse {
        guard let token = adminToken else { return Responses.notFound() }
        let presented = request.params["HTTP_AUTHORIZATION"] ?? ""
        // Both sides hashed first: the comparison takes the same time whatever the lengths.
        guard presented.hasPrefix("Bearer "),
              SessionCrypto.constantTimeEqual(SessionCrypto.sha256(Array(presented.dropFirst("Bearer ".count).utf8)),
                                               SessionCrypto.sha256(Array(token.utf8))) else {
            return Responses.error(401, "admin token required", extraHeaders: [("WWW-Authenticate", "Bearer")])
        }
        guard let fields = RequestBody.fields(request.body, contentType: request.params["CONTENT_TYPE"]),
              let user = fields["user"]?.string else {
            return Responses.error(400, "user is required")
        }
        do {
            let ended = try manager.revokeAll(of: user)
            event("revoked", "revoked every session of the user (\(ended) ended)", user: user)
            return confirmingWrites(Responses.json(200, JSON.object([("user", JSON.quoted(user)), ("ended", String(ended))])), "revoke-user")
        } catch {
            return failed(error)
        }
    }

    func isFormPost(_ request: FastCGIRequest) -> Bool {
        (request.params["CONTENT_TYPE"] ?? "").lowercased().hasPrefix("application/x-www-form-urlencoded")
    }

    // MARK: - CSRF

    /// Refuses requests a browser marks as cross-site, or whose `Origin` is neither the
    /// request's own nor configured.
    func crossSiteRefusal(_ request: FastCGIRequest) -> FastCGIResponse? {
        if request.params["HTTP_SEC_FETCH_SITE"] == "cross-site" {
            return Responses.error(403, "cross-site request refused")
        }
        guard let origin = request.params["HTTP_ORIGIN"]?.lowercased() else { return nil }
        let own = (request.isHTTPS ? "https://" : "http://") + (request.params["HTTP_HOST"] ?? "").lowercased()
        if origin == own || configuration.allowedOrigins.contains(origin) { return nil }
        return Responses.error(403, "cross-site request refused")
    }

    /// The origin check, then the session's CSRF token from `X-CSRF-Token` or, in a form post
    /// (the page's buttons), the field `csrf_token`, compared in constant time. A JSON body's
    /// `csrf_token` is not a token: on `/attributes` it would be stored as an attribute too.
    func csrfRefusal(_ request: FastCGIRequest, record: SessionRecord) -> FastCGIResponse? {
        if let refusal = crossSiteRefusal(request) { return refusal }
        guard let expected = record.csrfToken, !expected.isEmpty else {
            return Responses.error(403, "session has no CSRF token: log in again")
        }
        var presented = request.params["HTTP_X_CSRF_TOKEN"]
        if presented == nil, isFormPost(request),
           let fields = RequestBody.fields(request.body, contentType: request.params["CONTENT_TYPE"]) {
            presented = fields["csrf_token"]?.string
        }
        guard let presented, SessionCrypto.constantTimeEqual(Array(presented.utf8), Array(expected.utf8)) else {
            return Responses.error(403, "missing or wrong CSRF token")
        }
        return nil
    }
}
