import SessionCore
import SessionCrypto

/// A login vouched for by an application that checked the user itself (its own database,
/// LDAP, OAuth): it answers the browser's login request with
/// `X-Accel-Redirect: /_session_login?user=U&expires=E&nonce=N&next=P&mac=M`, and nginx hands
/// that to session-fcgi's `GET /trusted-login` with the browser's cookies (see the template's
/// `/_session_login` location and README, "Logging in from an application").
///
/// `mac` is HMAC-SHA-256, base64url without padding, over
/// `session-store trusted-login v1\n<user>\n<expires>\n<nonce>\n<next>` with one of the keys of
/// `--trusted-login-keys-file`. `expires` is a Unix time at most `maximumLifetimeSeconds`
/// ahead; `nonce` is 16 to 128 base64url characters, and the store refuses a nonce seen
/// before, so an assertion logs in once. `next` (optional, empty when absent) is where the
/// browser goes afterwards, a path on this site.
struct TrustedLoginAssertion: Equatable {
    let user: String
    let expires: Int64
    let nonce: String
    let next: String

    /// How far ahead `expires` may be: a leaked assertion is worth little for long.
    static let maximumLifetimeSeconds: Int64 = 300
    /// The MAC's domain, so that no other HMAC made with the same key can pass for one.
    static let context = "session-store trusted-login v1"

    /// Why an assertion was refused (logged, never shown to the browser beyond "refused").
    enum Refusal: String, Error, Equatable {
        case malformed, forged, expired, tooFarAhead = "too_far_ahead", replayed
    }

    /// The message the MAC covers.
    static func message(user: String, expires: Int64, nonce: String, next: String) -> [UInt8] {
        Array("\(context)\n\(user)\n\(expires)\n\(nonce)\n\(next)".utf8)
    }

    /// The assertion in `query` (a decoded query string's fields), if its MAC is right under one
    /// of `keys` and it has not expired at `now` (Unix seconds). The nonce's single use is the
    /// store's to check.
    static func verify(_ fields: [String: String], keys: [[UInt8]], now: Int64) -> Result<TrustedLoginAssertion, Refusal> {
        guard let user = fields["user"], SessionNames.isValidUserID(user),
              let expiresText = fields["expires"], expiresText.utf8.count <= 19, expiresText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let expires = Int64(expiresText),
              let nonce = fields["nonce"], (16...128).contains(nonce.utf8.count), nonce.utf8.allSatisfy(Base64.isURLAlphabet),
              let macText = fields["mac"], let mac = Base64.decodeURL(macText), mac.count == 32 else {
            return .failure(.malformed)
        }
        let next = fields["next"] ?? ""
        guard next.utf8.count <= 512 else { return .failure(.malformed) }
        let message = message(user: user, expires: expires, nonce: nonce, next: next)
        // Every key is tried whatever the outcome, so the time taken does not say which matched.
        var matched = false
        for key in keys {
            guard let expected = SessionCrypto.hmacSHA256(key: key, message: message) else { continue }
            if SessionCrypto.constantTimeEqual(expected, mac) { matched = true }
        }
        guard matched else { return .failure(.forged) }
        guard expires >= now else { return .failure(.expired) }
        guard expires <= now + maximumLifetimeSeconds else { return .failure(.tooFarAhead) }
        return .success(TrustedLoginAssertion(user: user, expires: expires, nonce: nonce, next: next))
    }
}
