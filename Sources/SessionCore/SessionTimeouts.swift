/// Server-enforced session lifetimes.
public struct SessionTimeouts: Equatable, Sendable {
    /// Idle timeout: a session unused this long expires (sliding; 1800 s).
    public var idleSeconds: Int
    /// Absolute lifetime from creation, whatever the activity (12 h).
    public var absoluteSeconds: Int

    public init(idleSeconds: Int = 1800, absoluteSeconds: Int = 12 * 3600) {
        self.idleSeconds = idleSeconds
        self.absoluteSeconds = absoluteSeconds
    }
}

/// Bounds on what one session may hold (application attributes only).
public struct SessionLimits: Equatable, Sendable {
    /// Most attributes per session (64).
    public var maxAttributes: Int
    /// Most bytes of attribute names and values together (16 KiB).
    public var maxBytes: Int

    public init(maxAttributes: Int = 64, maxBytes: Int = 16 * 1024) {
        self.maxAttributes = maxAttributes
        self.maxBytes = maxBytes
    }
}
