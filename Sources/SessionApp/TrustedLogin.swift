import SessionCore
import SessionCrypto

/// A login vouched for by an application that checked the user itself (its own database,
/// LDAP, OAuth): it answers the browser's login request with
/// `X-Accel-Redirect: /_session_login?user=U&expires=E&nonce=N&next=P&cross_site=C&mac=M`,
/// and nginx hands that to session-fcgi's `GET /trusted-login` with the browser's cookies and
/// headers (see the template's `/_session_login` location and README, "Logging in from an
/// application").
///
/// `mac` is HMAC-SHA-256, base64url without padding, over
/// `session-store trusted-login v1\n<user>\n<expires>\n<nonce>\n<next>\n<cross_site>` with one
/// of the keys of `--trusted-login-keys-file`; `next` and `cross_site` are empty when absent.
/// `expires` is a Unix time at most `maximumLifetimeSeconds` ahead, and `nonce` 16 to 128
/// base64url characters: the store checks both on its own clock and refuses a nonce seen
/// before, so an assertion logs in once (`SessionStore.claimNonce`). `next` is where the
/// browser goes afterwards, a path on this site. `cross_site=allow` lets the login through
/// when the browser's request came from another site (an OAuth or SAML callback, which the
/// application protects with its own `state`); without it, such a request is refused, as
/// `POST /login` refuses one, so a forged cross-site form cannot log a victim's browser into
/// the attacker's account.
struct TrustedLoginAssertion: Equatable {
    let user: String
    let expires: Int64
    let nonce: String
    let next: String
    let allowsCrossSite: Bool

    /// How far ahead `expires` may be: a leaked assertion is worth little for long.
    static let maximumLifetimeSeconds: Int64 = 300
    /// The MAC's domain, so that no other HMAC made with the same key can pass for one.
    static let context = "session-store trusted-login v1"
    /// The longest `next` read (a longer one could not pass through nginx's header buffers
    /// anyway); one over 512 bytes sends the browser to `/`, as any unusable `next` does.
    static let maximumNextBytes = 2048

    /// Why an assertion was refused (logged, never shown to the browser beyond "refused").
    enum Refusal: String, Error, Equatable {
        case malformed, forged, crossSite = "cross_site", expired, tooFarAhead = "too_far_ahead", replayed
    }

    /// The message the MAC covers.
    static func message(user: String, expires: String, nonce: String, next: String, crossSite: String) -> [UInt8] {
        Array("\(context)\n\(user)\n\(expires)\n\(nonce)\n\(next)\n\(crossSite)".utf8)
    }

    /// The assertion in `fields` (a decoded query string's), if it is well-formed and its MAC
    /// is right under one of `keys`. Its time and single use are the store's to check.
    static func verify(_ fields: [String: String], keys: [[UInt8]]) -> Result<TrustedLoginAssertion, Refusal> {
        guard let user = fields["user"], SessionNames.isValidUserID(user),
              let expiresText = fields["expires"], (1...18).contains(expiresText.utf8.count),
              expiresText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let expires = Int64(expiresText),
              let nonce = fields["nonce"], (16...128).contains(nonce.utf8.count), nonce.utf8.allSatisfy(Base64.isURLAlphabet),
              let macText = fields["mac"], let mac = Base64.decodeURL(macText), mac.count == 32 else {
            return .failure(.malformed)
        }
        let next = fields["next"] ?? ""
        let crossSite = fields["cross_site"] ?? ""
        guard next.utf8.count <= maximumNextBytes, crossSite == "" || crossSite == "allow" else { return .failure(.malformed) }
        let message = message(user: user, expires: expiresText, nonce: nonce, next: next, crossSite: crossSite)
        // Every key is tried whatever the outcome, so the time taken does not say which matched.
        var matched = false
        for key in keys {
            guard let expected = SessionCrypto.hmacSHA256(key: key, message: message) else { continue }
            if SessionCrypto.constantTimeEqual(expected, mac) { matched = true }
        }
        guard matched else { return .failure(.forged) }
        return .success(TrustedLoginAssertion(user: user, expires: expires, nonce: nonce, next: next, allowsCrossSite: crossSite == "allow"))
    }
}
