import Foundation

/// Addresses of this machine's interfaces.
public enum LocalAddresses {
    /// An IPv4 address of an interface other than loopback (nil on a machine without one).
    public static func firstNonLoopbackIPv4() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, Int32(address.pointee.sa_family) == AF_INET else { continue }
            let v4 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self)
            let hostOrder = UInt32(bigEndian: v4.sin_addr.s_addr)
            if hostOrder >> 24 == 127 { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            var raw = v4.sin_addr
            guard inet_ntop(AF_INET, &raw, &text, socklen_t(INET_ADDRSTRLEN)) != nil else { continue }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return nil
    }
}
