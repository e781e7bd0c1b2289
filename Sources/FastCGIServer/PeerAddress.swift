import Glibc

/// The IP address of a TCP peer, kept in IPv6 form: an IPv4 address is stored IPv4-mapped
/// (`::ffff:a.b.c.d`), so a peer reaching an IPv6 socket over IPv4 compares equal to the same
/// address written as IPv4.
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    /// The 128 bits, most significant first.
    let high: UInt64
    let low: UInt64

    /// Bytes 10 and 11 of an IPv4-mapped address (bits 32–47 of `low`).
    private static let mappedPrefix: UInt64 = 0xffff

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address given as its 32 bits in host order (`0x7f000001` is 127.0.0.1).
    init(ipv4 value: UInt32) {
        self.init(high: 0, low: Self.mappedPrefix << 32 | UInt64(value))
    }

    /// Parses a dotted IPv4 or a textual IPv6 address (`inet_pton`); nil for anything else.
    public init?(parsing text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(ipv4: UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        self.init(bytes: withUnsafeBytes(of: v6) { Array($0) })
    }

    /// The peer of an accepted socket, from the address accept(2) filled in; nil for a family
    /// other than IPv4 and IPv6 (a Unix socket has no address to filter on).
    init?(socketAddress storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let address = withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in.self) }
            self.init(ipv4: UInt32(bigEndian: address.sin_addr.s_addr))
        case AF_INET6:
            let address = withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in6.self) }
            self.init(bytes: withUnsafeBytes(of: address.sin6_addr) { Array($0) })
        default:
            return nil
        }
    }

    private init(bytes: [UInt8]) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
        for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
        self.init(high: high, low: low)
    }

    /// Whether this is an IPv4 address (or an IPv4-mapped IPv6 one).
    public var isIPv4: Bool { high == 0 && low >> 32 == Self.mappedPrefix }

    /// The first `bits` bits (counted in the 128-bit form), the rest zero.
    func masked(toPrefix bits: Int) -> PeerAddress {
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? .max : ~(UInt64.max >> UInt64(bits)) }
        return PeerAddress(high: high & mask(bits), low: low & mask(bits - 64))
    }

    public var description: String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * index))
            bytes[8 + index] = UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * index))
        }
        // An IPv4 address is the last 4 bytes of its mapped form.
        let (family, start, length) = isIPv4 ? (AF_INET, 12, Int(INET_ADDRSTRLEN)) : (AF_INET6, 0, Int(INET6_ADDRSTRLEN))
        var text = [CChar](repeating: 0, count: length + 1)
        let formatted = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress.map { $0 + start }, &text, socklen_t(length)) != nil
        }
        guard formatted else { return "?" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
