import FastCGIServer
import Glibc
import SessionCore

/// Logins vouched for by an application that checks users itself (`TrustedLoginAssertion`).
extension SessionResponder {
    /// How long a used nonce is remembered: longer than any assertion lives, with a minute to
    /// spare for clocks that disagree between hosts.
    static var usedNonceSeconds: Int { Int(TrustedLoginAssertion.maximumLifetimeSeconds) + 60 }

    /// `GET /trusted-login`, reached only through nginx's internal `/_session_login` location
    /// (which sets the FastCGI param `SESSION_FCGI_TRUSTED_LOGIN=1`, one no client can send):
    /// an application answered the browser's login with `X-Accel-Redirect` to it. Checks the
    /// assertion's MAC, expiry and single use, then logs the browser in exactly as a password
    /// login does (the presented session rotated to a new id marked with the user, indexed for
    /// revoke-all) and sends it on to `next` with its new cookie. 404 when no trusted-login
    /// keys are configured or the request did not come through that location.
    func trustedLogin(_ request: FastCGIRequest) -> FastCGIResponse {
        let keys = trustedLoginKeys
        guard !keys.isEmpty, request.params.has("SESSION_FCGI_TRUSTED_LOGIN", equalTo: "1") else { return Responses.notFound() }
        let fields = FormURLEncoded.parse(Array(request.query.utf8))
        let assertion: TrustedLoginAssertion
        switch TrustedLoginAssertion.verify(fields, keys: keys, now: Int64(time(nil))) {
        case .success(let verified): assertion = verified
        case .failure(let refusal): return trustedLoginRefused(request, refusal, user: nil)
        }
        do {
            guard try manager.store.useOnce(assertion.nonce, of: assertion.user, forSeconds: Self.usedNonceSeconds) else {
                return trustedLoginRefused(request, .replayed, user: assertion.user)
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
