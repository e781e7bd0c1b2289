import FastCGIServer
import SessionCore

/// Logins vouched for by an application that checks users itself (`TrustedLoginAssertion`).
extension SessionResponder {
    /// `GET /trusted-login`, reached only through nginx's internal `/_session_login` location
    /// (which sets the FastCGI param `SESSION_FCGI_TRUSTED_LOGIN=1`, one no client can send):
    /// an application answered the browser's login with `X-Accel-Redirect` to it. Checks the
    /// assertion's MAC, where the browser's request came from, and (on Redis's clock) its
    /// expiry and single use, then logs the browser in exactly as a password
    /// login does (the presented session rotated to a new id marked with the user, indexed for
    /// revoke-all) and sends it on to `next` with its new cookie. 404 when no trusted-login
    /// keys are configured or the request did not come through that location.
    func trustedLogin(_ request: FastCGIRequest) -> FastCGIResponse {
        let keys = trustedLoginKeys
        guard !keys.isEmpty, request.params.has("SESSION_FCGI_TRUSTED_LOGIN", equalTo: "1") else { return Responses.notFound() }
        let fields = FormURLEncoded.parse(Array(request.query.utf8))
        let assertion: TrustedLoginAssertion
        switch TrustedLoginAssertion.verify(fields, keys: keys) {
        case .success(let verified): assertion = verified
        case .failure(let refusal): return trustedLoginRefused(request, refusal, user: nil)
        }
        // The browser's own request (nginx passes its headers on): one from another site is
        // refused as POST /login refuses it, unless the application allowed it (a callback).
        if !assertion.allowsCrossSite, crossSiteRefusal(request) != nil {
            return trustedLoginRefused(request, .crossSite, user: assertion.user)
        }
        do {
            switch try manager.store.claimNonce(assertion.nonce, expires: assertion.expires,
                                                maximumLifetimeSeconds: TrustedLoginAssertion.maximumLifetimeSeconds) {
            case .claimed: break
            case .used: return trustedLoginRefused(request, .replayed, user: assertion.user)
            case .expired: return trustedLoginRefused(request, .expired, user: assertion.user)
            case .tooFarAhead: return trustedLoginRefused(request, .tooFarAhead, user: assertion.user)
            }
        } catch {
            return failed(.store(error))
        }
        return completeLogin(assertion.user, request, extra: ["via": "trusted"]) { _ in
            Responses.seeOther(HomePage.safeNext(assertion.next))
        }
    }

    /// A refused assertion: 403 to the browser, the reason in the log (never the assertion).
    private func trustedLoginRefused(_ request: FastCGIRequest, _ refusal: TrustedLoginAssertion.Refusal, user: String?) -> FastCGIResponse {
        event("trusted_login_refused", "trusted login refused: \(refusal.rawValue)", user: user,
              extra: ["reason": refusal.rawValue, "client": request.params["REMOTE_ADDR"] ?? "unknown"], level: .warning)
        return Responses.error(403, "login refused")
    }
}
