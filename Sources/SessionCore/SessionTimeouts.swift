/// Server-enforced session lifetimes.
public struct SessionTimeouts: Equatable, Sendable {
    /// Idle timeout: a session unused this long expires (sliding; 1800 s).
    public var idleSeconds: Int
    /// Absolute lifetime from creation, whatever the activity (12 h).
    public var absoluteSeconds: Int
    /// How often a request renews the idle timeout and the last-seen time (the "touch"): a
    /// request less than this long after the last touch writes neither, so a session in steady
    /// use costs Redis at most one renewal write per interval, not one per request. A session then
    /// expires between `idleSeconds - touchIntervalSeconds` and `idleSeconds` after its last
    /// request (never later), and its last-seen time is exact to this interval. 0 touches on
    /// every request. Default: `defaultTouchInterval(idleSeconds:)`.
    public var touchIntervalSeconds: Int

    /// `touchIntervalSeconds` nil takes the default for `idleSeconds`.
    public init(idleSeconds: Int = 1800, absoluteSeconds: Int = 12 * 3600, touchIntervalSeconds: Int? = nil) {
        self.idleSeconds = idleSeconds
        self.absoluteSeconds = absoluteSeconds
        self.touchIntervalSeconds = touchIntervalSeconds ?? Self.defaultTouchInterval(idleSeconds: idleSeconds)
    }

    /// A thirtieth of the idle timeout, at most 60 s (60 s for the default 30 minutes; 0, a
    /// touch on every request, below 30 s).
    public static func defaultTouchInterval(idleSeconds: Int) -> Int {
        min(60, max(0, idleSeconds / 30))
    }

    /// Longest touch interval an idle timeout allows: half of it, so that a session in use is
    /// always renewed well before it could expire.
    public static func maximumTouchInterval(idleSeconds: Int) -> Int {
        max(0, idleSeconds / 2)
    }

    /// The interval the stores apply: `touchIntervalSeconds` within 0 and half the idle timeout,
    /// whatever was assigned (the configuration refuses more; a library caller cannot make
    /// sessions in use expire by setting a larger one).
    public var effectiveTouchInterval: Int {
        min(max(0, touchIntervalSeconds), Self.maximumTouchInterval(idleSeconds: idleSeconds))
    }

    /// Whether a request at `now` renews a session last touched at `lastTouched` (the one
    /// rule every store applies): renewed unless the last touch is known, not in the future
    /// (a clock step back or a key moved between nodes) and less than the interval old.
    public func touchIsDue(now: Int64, lastTouched: Int64?) -> Bool {
        guard let lastTouched, lastTouched <= now else { return true }
        return now - lastTouched >= Int64(effectiveTouchInterval)
    }
}

/// Bounds on what one session and one user may hold.
///
/// The attribute rule is one rule for every store and every path that writes attributes
/// (create with copied fields, update): after the write, the session's application attributes
/// (`SessionNames.isAttribute`) number at most `maxAttributes` and their names and values
/// together take at most `maxBytes` UTF-8 bytes; otherwise nothing is written. Values count as
/// the application wrote them: a store that seals values at rest counts the plaintext each
/// sealed value holds, never its larger sealed form, so a session fits or not alike with or
/// without encryption. Stores count what is actually stored at write time (no running totals
/// that another path could skip);
/// `admits(_:)` is the reference the contract suite holds every store to, and the Redis
/// store's scripts implement exactly it.
public struct SessionLimits: Equatable, Sendable {
    /// Most attributes per session (64).
    public var maxAttributes: Int
    /// Most bytes of attribute names and values together (16 KiB).
    public var maxBytes: Int
    /// Most live sessions per user (20): a login past it ends the user's oldest session, as
    /// Spring Session's maximum-sessions does. A person with many browsers and devices does not
    /// reach it; it bounds what one account can make the store and the page do.
    public var maxSessionsPerUser: Int

    public init(maxAttributes: Int = 64, maxBytes: Int = 16 * 1024, maxSessionsPerUser: Int = 20) {
        self.maxAttributes = maxAttributes
        self.maxBytes = maxBytes
        self.maxSessionsPerUser = maxSessionsPerUser
    }

    /// Whether a session whose fields are `fields` is within the attribute limits.
    public func admits(_ fields: [String: String]) -> Bool {
        var count = 0
        var bytes = 0
        for (name, value) in fields where SessionNames.isAttribute(name) {
            count += 1
            bytes += name.utf8.count + value.utf8.count
        }
        return count <= maxAttributes && bytes <= maxBytes
    }
}
