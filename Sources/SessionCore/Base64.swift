/// Base64 (RFC 4648), the project's one implementation: the url-safe alphabet without padding
/// (session ids, cookie signatures, salts and hashes) and the standard alphabet with padding
/// (Content-Security-Policy hashes).
public enum Base64 {
    /// Which of the two encodings.
    public enum Variant: Sendable {
        /// `A–Z a–z 0–9 - _`, no padding (RFC 4648 §5).
        case url
        /// `A–Z a–z 0–9 + /`, padded with `=` (RFC 4648 §4).
        case standard
    }

    private static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let standardAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Whether `byte` belongs to the url-safe alphabet.
    @inline(__always)
    public static func isURLAlphabet(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    public static func encode(_ bytes: [UInt8], _ variant: Variant = .url) -> String {
        let alphabet = variant == .url ? urlAlphabet : standardAlphabet
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let remaining = min(3, bytes.count - index)
            var value = UInt32(bytes[index]) << 16
            if remaining > 1 { value |= UInt32(bytes[index + 1]) << 8 }
            if remaining > 2 { value |= UInt32(bytes[index + 2]) }
            for position in 0...remaining {
                output.append(alphabet[Int((value >> UInt32(18 - 6 * position)) & 0x3F)])
            }
            if variant == .standard {
                for _ in remaining..<3 { output.append(UInt8(ascii: "=")) }
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes unpadded url-safe base64, canonically: `nil` for any other character, a length
    /// that cannot occur, or unused low bits in the last character that are not zero (so each
    /// byte string has exactly one accepted spelling).
    public static func decodeURL(_ text: some StringProtocol) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in text.utf8 {
            guard let value = sextet(byte) else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        // 2 or 4 leftover bits are padding and must be zero; 6 means a lone character.
        guard bits < 6, accumulator == 0 else { return nil }
        return output
    }

    /// Decodes padded standard base64 (what `openssl rand -base64 32` prints), canonically:
    /// `nil` for any other character, missing or misplaced `=`, or unused low bits that are not
    /// zero.
    public static func decodeStandard(_ text: some StringProtocol) -> [UInt8]? {
        var body = Array(text.utf8)
        guard body.count % 4 == 0 else { return nil }
        var padding = 0
        while padding < 2, body.last == UInt8(ascii: "=") {
            body.removeLast()
            padding += 1
        }
        let translated = body.map { byte -> UInt8 in
            switch byte {
            case UInt8(ascii: "+"): return UInt8(ascii: "-")
            case UInt8(ascii: "/"): return UInt8(ascii: "_")
            case UInt8(ascii: "-"), UInt8(ascii: "_"): return UInt8(ascii: "=")  // not in this alphabet
            default: return byte
            }
        }
        return decodeURL(String(decoding: translated, as: UTF8.self))
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): return 62
        case UInt8(ascii: "_"): return 63
        default: return nil
        }
    }
}
