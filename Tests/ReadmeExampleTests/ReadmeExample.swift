import RedisClient
import SessionCore
import SessionCrypto
import SessionRedis

// README's "Using the session API from Swift", compiled with the tests so that it keeps
// building: Tests/deploy/test_readme.py checks that README shows exactly this body and that
// every module it imports is a library product of Package.swift (what another package can
// depend on). `signingKey` and `cookieHeaderFromTheRequest` stand for the app's own values.
func readmeExample(signingKey: String, cookieHeaderFromTheRequest: String) throws {
    let redis = try RedisConfiguration(url: "redis://127.0.0.1:6379")      // or redis-cluster://…, redis-sentinel://…/mymaster
    let sessions = SessionManager(store: RedisSessionStore(configuration: redis),
                                  timeouts: SessionTimeouts(idleSeconds: 1800, absoluteSeconds: 12 * 3600),
                                  limits: SessionLimits(maxAttributes: 64, maxBytes: 16 * 1024, maxSessionsPerUser: 20),
                                  rotationGraceSeconds: 10, rotationRetry: .redis)
    let cookies = SessionCookieCodec(configuration: SessionConfiguration(),   // sid, Path=/, HttpOnly, SameSite=Lax
                                     signer: HMACSessionIDSigner(keys: [Array(signingKey.utf8)]))

    let presented = cookies.presentedID(cookieHeader: cookieHeaderFromTheRequest)  // nil: absent, malformed or forged
    switch try sessions.resolve(presented) {
    case .live(let session):
        print(session.attributes["cart"] ?? "empty", session.user ?? "anonymous")
        try sessions.change(session.id, set: [("cart", "3 items")], remove: ["coupon"])   // one atomic delta
        let loggedIn = try sessions.login(user: "ada", current: .live(session), userAgent: "…")
        let setCookie = try cookies.setCookieHeader(for: loggedIn.id, requestIsHTTPS: true)
        print("Set-Cookie: \(setCookie)")                                       // send it
        try sessions.end(loggedIn)                                                   // logout
    case .superseded:
        break   // the id was just replaced by a login: answer without touching the cookie
    case .none:
        break   // no session: start one when you need it (countVisit / login)
    }
    try sessions.revokeAll(of: "ada")                                               // every session of ada, everywhere
}
