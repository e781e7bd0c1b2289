/// The `/count` use case: count a visit in the presented session, or start a new session when
/// there is none. Knows neither HTTP nor Redis.
public struct VisitCounter<Store: SessionStore> {
    /// The outcome of one visit.
    public struct Visit: Equatable, Sendable {
        public let sessionID: SessionID
        public let count: Int64
        /// Whether a new session was started (no, malformed, unknown or expired id presented).
        public let isNewSession: Bool
    }

    public static var countField: String { "count" }

    public let store: Store
    public let configuration: SessionConfiguration

    public init(store: Store, configuration: SessionConfiguration) {
        self.store = store
        self.configuration = configuration
    }

    /// Counts one visit. A presented id that the store does not know is never adopted.
    public func countVisit(presented: SessionID?) throws(SessionStoreError) -> Visit {
        let ttl = configuration.idleTimeoutSeconds
        if let presented, let count = try store.increment(Self.countField, by: 1, in: presented, idleTimeoutSeconds: ttl) {
            return Visit(sessionID: presented, count: count, isNewSession: false)
        }
        // 192 random bits make a collision practically impossible; the loop only keeps the
        // contract (never reuse an existing id) without assuming it.
        for _ in 0..<3 {
            let id = SessionID.generate()
            if try store.create(id, fields: [(Self.countField, "1")], idleTimeoutSeconds: ttl) {
                return Visit(sessionID: id, count: 1, isNewSession: true)
            }
        }
        throw .failed("could not allocate a unique session id")
    }
}
