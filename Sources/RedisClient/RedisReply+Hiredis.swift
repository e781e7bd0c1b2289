import CHiredis

/// Builds replies straight into `RedisReply` values while hiredis's reader parses them, through
/// the reader's object functions (`redisReaderCreateWithFunctions`), instead of letting hiredis
/// allocate its own reply tree (a `redisReply` per element, plus each array's element array)
/// that would then be copied and freed.
///
/// hiredis calls the functions in wire order: an array when its header is parsed, then each of
/// its elements. Arrays being filled wait on `frames`; a value goes into the innermost one, and
/// an array that has all its elements goes into the one around it, or becomes the reply.
///
/// Thread rules: one builder per reader, used by the reader's thread only (the reader holds an
/// unretained pointer to it: its owner keeps it alive for as long as the reader).
final class RedisReplyBuilder {
    private var frames: [(elements: [RedisReply], expected: Int)] = []
    private var root: RedisReply?

    /// The reply completed since the last call, if any.
    func takeReply() -> RedisReply? {
        defer { root = nil }
        return root
    }

    /// Forgets any half-built reply (after a protocol error, or with a new reader).
    func reset() {
        frames.removeAll(keepingCapacity: true)
        root = nil
    }

    fileprivate func value(_ value: RedisReply, isTopLevel: Bool) {
        if isTopLevel {
            frames.removeAll(keepingCapacity: true)
            root = value
            return
        }
        add(value)
    }

    fileprivate func array(count: Int, isTopLevel: Bool) {
        if isTopLevel { frames.removeAll(keepingCapacity: true) }
        guard count > 0 else {
            value(.array([]), isTopLevel: isTopLevel)
            return
        }
        var elements: [RedisReply] = []
        // The count comes from the wire: reserve no more than a sane amount up front.
        elements.reserveCapacity(min(count, 1024))
        frames.append((elements, count))
    }

    /// Adds `value` to the innermost array being filled, closing arrays that are then full.
    private func add(_ value: RedisReply) {
        if let completed = Self.add(value, to: &frames) { root = completed }
    }

    /// The same on the frames themselves (one access to the property for the whole walk);
    /// returns the top-level array when it is complete.
    private static func add(_ value: RedisReply, to frames: inout [(elements: [RedisReply], expected: Int)]) -> RedisReply? {
        var value = value
        while let last = frames.indices.last {
            frames[last].elements.append(value)
            guard frames[last].elements.count >= frames[last].expected else { return nil }
            value = .array(frames.removeLast().elements)
        }
        return value
    }

    /// The builder a task's reader was given.
    fileprivate static func of(_ task: UnsafePointer<redisReadTask>?) -> (builder: RedisReplyBuilder, isTopLevel: Bool)? {
        guard let task, let privdata = task.pointee.privdata else { return nil }
        return (Unmanaged<RedisReplyBuilder>.fromOpaque(privdata).takeUnretainedValue(), task.pointee.parent == nil)
    }

    /// What the functions return to hiredis: any pointer but null (null means "out of memory"
    /// to the reader). hiredis keeps it only to hand it back, and never dereferences it.
    fileprivate static func token(_ task: UnsafePointer<redisReadTask>?) -> UnsafeMutableRawPointer? {
        task?.pointee.privdata
    }

    /// A reader for this builder, or nil when hiredis cannot allocate one. Free it with
    /// `redisReaderFree` before the builder goes away.
    func makeReader() -> UnsafeMutablePointer<redisReader>? {
        guard let reader = redisReaderCreateWithFunctions(replyObjectFunctions) else { return nil }
        reader.pointee.privdata = Unmanaged.passUnretained(self).toOpaque()
        reset()
        return reader
    }
}

/// hiredis keeps a pointer to its functions table (it does not copy it), so the table lives for
/// the whole process: allocated once, never freed, never written after initialization.
nonisolated(unsafe) private let replyObjectFunctions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
    let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    functions.initialize(to: redisReplyObjectFunctions(
        createString: { task, bytes, length in
            guard let (builder, isTopLevel) = RedisReplyBuilder.of(task) else { return nil }
            let raw = UnsafeRawBufferPointer(start: bytes, count: bytes == nil ? 0 : length)
            switch task?.pointee.type ?? REDIS_REPLY_STRING {
            case REDIS_REPLY_STATUS:
                builder.value(.status(String(decoding: raw, as: UTF8.self)), isTopLevel: isTopLevel)
            case REDIS_REPLY_ERROR:
                builder.value(.error(RedisServerError(message: String(decoding: raw, as: UTF8.self))), isTopLevel: isTopLevel)
            default:
                builder.value(.string(Array(raw)), isTopLevel: isTopLevel)
            }
            return RedisReplyBuilder.token(task)
        },
        createArray: { task, count in
            guard let (builder, isTopLevel) = RedisReplyBuilder.of(task) else { return nil }
            builder.array(count: Int(count), isTopLevel: isTopLevel)
            return RedisReplyBuilder.token(task)
        },
        createInteger: { task, value in
            guard let (builder, isTopLevel) = RedisReplyBuilder.of(task) else { return nil }
            builder.value(.integer(Int64(value)), isTopLevel: isTopLevel)
            return RedisReplyBuilder.token(task)
        },
        createNil: { task in
            guard let (builder, isTopLevel) = RedisReplyBuilder.of(task) else { return nil }
            builder.value(.null, isTopLevel: isTopLevel)
            return RedisReplyBuilder.token(task)
        },
        freeObject: { _ in }
    ))
    return functions
}()
