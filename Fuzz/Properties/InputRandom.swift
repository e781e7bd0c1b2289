/// A generator seeded from the input itself, so the choices a check makes (where to split a
/// stream, which id to derive) are the same every time the same input is replayed.
struct InputRandom: RandomNumberGenerator {
    private var state: UInt64

    init(_ bytes: UnsafeRawBufferPointer, salt: UInt64 = 0) {
        // FNV-1a over the input.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ salt
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        state = hash
    }

    /// SplitMix64.
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Sorted cut points in `1..<count`, at most `maximum` of them, for feeding `count` bytes
    /// in pieces.
    mutating func cuts(in count: Int, maximum: Int) -> [Int] {
        guard count > 1 else { return [] }
        let wanted = Int.random(in: 0...maximum, using: &self)
        return Set((0..<wanted).map { _ in Int.random(in: 1..<count, using: &self) }).sorted()
    }
}
