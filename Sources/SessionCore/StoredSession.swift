/// A live session read through its user's index (`SessionStore.loadMany(referenced:timeouts:)`):
/// named by its reference, never by its id, which the store may not keep.
public struct StoredSession: SessionFields, Equatable, Sendable {
    public let reference: SessionReference
    public let fields: [String: String]
    /// The store's clock when the session was read (seconds since 1970).
    public let now: Int64

    public init(reference: SessionReference, fields: [String: String], now: Int64) {
        self.reference = reference
        self.fields = fields
        self.now = now
    }
}
