/// Redis Cluster's key → slot mapping: CRC16 (XMODEM) of the key, or of its hash tag — the part
/// between the first `{` and the next `}` when that part is not empty — modulo 16384.
public enum HashSlot {
    public static let count = 16384

    public static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { of(bytes: $0) }
    }

    public static func of(bytes key: UnsafeBufferPointer<UInt8>) -> Int {
        var hashed = key
        if let open = key.firstIndex(of: UInt8(ascii: "{")) {
            let after = open + 1
            if let close = key[after...].firstIndex(of: UInt8(ascii: "}")), close > after {
                hashed = UnsafeBufferPointer(rebasing: key[after..<close])
            }
        }
        return Int(crc16(hashed) & 0x3FFF)
    }

    /// CRC-16/XMODEM (polynomial 0x1021, initial 0), the variant Redis Cluster uses.
    static func crc16(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
