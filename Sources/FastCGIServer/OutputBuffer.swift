import Glibc

/// A growable byte buffer written through a raw pointer: one `memcpy` per piece and integers
/// written as digits in place. Each worker thread owns one and reuses it for every response,
/// so serializing allocates nothing. A noncopyable struct passed `inout`: it owns its memory
/// alone and its accesses are checked at compile time, with no runtime exclusivity checks.
/// It grows to the largest response written; `removeAll(shrinkingAbove:)` gives the memory of
/// an unusually large one back, so a long-lived worker stays small.
public struct OutputBuffer: ~Copyable {
    private var base: UnsafeMutableRawPointer
    /// Bytes allocated now.
    public private(set) var capacity: Int
    private let initialCapacity: Int
    /// Bytes written since the last `removeAll()`.
    public private(set) var count = 0

    public init(capacity: Int = 4096) {
        self.capacity = max(capacity, 64)
        initialCapacity = self.capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// Forgets the content, keeping the storage.
    public mutating func removeAll() { count = 0 }

    /// Forgets the content; if the storage grew beyond `limit` bytes, goes back to the
    /// initial capacity (one free and one allocation, only after a large response).
    public mutating func removeAll(shrinkingAbove limit: Int) {
        count = 0
        guard capacity > limit, capacity > initialCapacity else { return }
        base.deallocate()
        base = UnsafeMutableRawPointer.allocate(byteCount: initialCapacity, alignment: 16)
        capacity = initialCapacity
    }

    /// The bytes written so far, valid until the next write.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    public mutating func append(_ piece: UnsafeRawBufferPointer) {
        guard let source = piece.baseAddress, piece.count > 0 else { return }
        reserve(piece.count)
        memcpy(base + count, source, piece.count)
        count += piece.count
    }

    public mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    public mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    public mutating func append(byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// Appends `value` in decimal.
    public mutating func appendDecimal(_ value: Int64) {
        reserve(20)
        if value < 0 { append(byte: UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        let start = count
        repeat {
            base.storeBytes(of: UInt8(ascii: "0") + UInt8(magnitude % 10), toByteOffset: count, as: UInt8.self)
            count += 1
            magnitude /= 10
        } while magnitude > 0
        var low = start, high = count - 1
        while low < high {
            let byte = base.load(fromByteOffset: low, as: UInt8.self)
            base.storeBytes(of: base.load(fromByteOffset: high, as: UInt8.self), toByteOffset: low, as: UInt8.self)
            base.storeBytes(of: byte, toByteOffset: high, as: UInt8.self)
            low += 1
            high -= 1
        }
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
