import Glibc

/// Commands serialized as RESP (`*<n>\r\n` then `$<length>\r\n<bytes>\r\n` per argument,
/// binary-safe) into one buffer that a connection reuses for every write: sized once per
/// command, each argument copied with one `memcpy`, lengths written as digits in place. A
/// noncopyable struct: it owns its memory alone, freed when it goes away.
struct RESPBuffer: ~Copyable {
    private var base: UnsafeMutableRawPointer
    private var capacity: Int
    private let initialCapacity: Int
    /// Bytes written since the last `removeAll`.
    private(set) var count = 0

    init(capacity: Int = 1024) {
        self.capacity = max(capacity, 64)
        initialCapacity = self.capacity
        base = .allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// The bytes written so far, valid until the next change.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Forgets the content; storage grown beyond `limit` goes back to the initial size.
    mutating func removeAll(shrinkingAbove limit: Int = 256 * 1024) {
        count = 0
        guard capacity > limit else { return }
        base.deallocate()
        base = .allocate(byteCount: initialCapacity, alignment: 16)
        capacity = initialCapacity
    }

    /// Appends `command` in RESP.
    mutating func append(_ command: RedisCommand) {
        // At most 20 digits and 3 more bytes per length line.
        reserve(command.bytes.count + (command.count + 1) * 23)
        store(UInt8(ascii: "*"))
        storeDecimalLine(command.count)
        command.bytes.withUnsafeBytes { arguments in
            var offset = 0
            for length in command.lengths {
                store(UInt8(ascii: "$"))
                storeDecimalLine(length)
                if length > 0, let source = arguments.baseAddress {
                    memcpy(base + count, source + offset, length)
                    count += length
                }
                store(13)
                store(10)
                offset += length
            }
        }
    }

    @inline(__always)
    private mutating func store(_ byte: UInt8) {
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// `value` (never negative: a count or a length) in decimal, then CRLF.
    private mutating func storeDecimalLine(_ value: Int) {
        var rest = value.magnitude
        let start = count
        repeat {
            store(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        var low = start, high = count - 1
        while low < high {
            let byte = base.load(fromByteOffset: low, as: UInt8.self)
            base.storeBytes(of: base.load(fromByteOffset: high, as: UInt8.self), toByteOffset: low, as: UInt8.self)
            base.storeBytes(of: byte, toByteOffset: high, as: UInt8.self)
            low += 1
            high -= 1
        }
        store(13)
        store(10)
    }

    private mutating func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        var newCapacity = capacity * 2
        while newCapacity < count + extra { newCapacity *= 2 }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        memcpy(grown, base, count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }
}
