/// A session store call that can be answered together with other requests' calls: the first
/// (and usually only) store call of the hot routes — counting a visit, starting a session,
/// resolving a presented session. `SessionManager` names it (`countVisitCall`, `resolveCall`)
/// and later consumes its answer, so a worker holding several requests can send all their
/// calls in one round trip (`SessionStore.answer(_:timeouts:)`) and finish each request with
/// its own answer.
public enum SessionStoreCall: Sendable {
    /// `SessionStore.increment(field, by: amount, in: id, …)`.
    case increment(field: String, amount: Int64, id: SessionID)
    /// `SessionStore.load(id, touch: touch, incrementing: field, …)`.
    case load(id: SessionID, touch: Bool, incrementing: String?)
    /// `SessionStore.create(id, fields: fields, …, limits: limits)`.
    case create(id: SessionID, fields: [(name: String, value: String)], limits: SessionLimits)
}

/// The answer to one `SessionStoreCall`, of the call's own kind.
public enum SessionStoreAnswer: Equatable {
    case incremented(StoreLookup<Int64>)
    case loaded(StoreLookup<SessionRecord>)
    case created(CreateOutcome)

    /// The lookup of an `.increment` call's answer (nil for another kind).
    public var incremented: StoreLookup<Int64>? {
        if case .incremented(let lookup) = self { return lookup }
        return nil
    }

    /// The outcome of a `.create` call's answer (nil for another kind).
    public var created: CreateOutcome? {
        if case .created(let outcome) = self { return outcome }
        return nil
    }

    /// The lookup of a `.load` call's answer (nil for another kind).
    public var loaded: StoreLookup<SessionRecord>? {
        if case .loaded(let lookup) = self { return lookup }
        return nil
    }
}

extension SessionStore {
    /// Answers one call with the store's own method for it.
    public func answer(_ call: SessionStoreCall, timeouts: SessionTimeouts) throws(SessionStoreError) -> SessionStoreAnswer {
        switch call {
        case .increment(let field, let amount, let id):
            return .incremented(try increment(field, by: amount, in: id, timeouts: timeouts))
        case .load(let id, let touch, let field):
            return .loaded(try load(id, timeouts: timeouts, touch: touch, incrementing: field))
        case .create(let id, let fields, let limits):
            return .created(try create(id, fields: fields, timeouts: timeouts, limits: limits))
        }
    }

    /// One call after another: for stores without a cheaper way (`InMemorySessionStore`).
    public func answerEach(_ calls: [SessionStoreCall], timeouts: SessionTimeouts) -> [Result<SessionStoreAnswer, SessionStoreError>] {
        calls.map { call in Result { () throws(SessionStoreError) in try answer(call, timeouts: timeouts) } }
    }
}
