import SessionCore
import SessionCrypto

extension FuzzTarget {
    /// A `Cookie` header as a browser (or an attacker) sends it.
    static let cookie = FuzzTarget(
        name: "cookie",
        summary: "Cookie header → CookieHeader.forEachValue, SessionCookieCodec.inspect/presentedID, unsigned and signed",
        check: CookieProperties.check
    )
}

/// Properties of the cookie parser and the session cookie codec on one `Cookie` header.
enum CookieProperties {
    private static let firstKey = Array("fuzzing-signing-key-one-0123456789abcdef".utf8)
    private static let secondKey = Array("fuzzing-signing-key-two-0123456789abcdef".utf8)

    /// The codecs a deployment can run: plain `sid`, a `__Host-` name, signed with key
    /// rotation (the first key signs, both verify), and signed by the second key alone (to
    /// know which cookies the rotated-out key made).
    private static let plain = SessionCookieCodec(configuration: SessionConfiguration())
    private static let hostPrefixed = SessionCookieCodec(configuration: SessionConfiguration(cookieName: "__Host-sid", securePolicy: .always))
    private static let signed = SessionCookieCodec(configuration: SessionConfiguration(),
                                                   signer: HMACSessionIDSigner(keys: [firstKey, secondKey]))
    private static let signedBySecondKey = SessionCookieCodec(configuration: SessionConfiguration(),
                                                              signer: HMACSessionIDSigner(keys: [secondKey]))

    static func check(_ input: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let header = input.bindMemory(to: UInt8.self)
        for name in ["sid", "__Host-sid", ""] {
            try valuesMatchTheReference(header, name: name)
        }
        try codecProperties(plain, header, signedAlternative: nil)
        try codecProperties(hostPrefixed, header, signedAlternative: nil)
        try codecProperties(signed, header, signedAlternative: signedBySecondKey)
        try roundTrip(input)
    }

    /// `forEachValue` yields exactly what a plain reading of RFC 6265 §4.2 yields: pairs split
    /// on `;`, the name before the first `=`, both trimmed of spaces and tabs, one pair of
    /// double quotes removed from the value. Every value lies inside the header, and returning
    /// false stops the walk.
    private static func valuesMatchTheReference(_ header: UnsafeBufferPointer<UInt8>, name: String) throws(PropertyViolation) {
        let expected = referenceValues(Array(header), name: Array(name.utf8))
        var seen: [[UInt8]] = []
        var outside = false
        CookieHeader.forEachValue(named: name, inUTF8: header) { value in
            if value.count > 0, let base = header.baseAddress, let start = value.baseAddress,
               start < base || start + value.count > base + header.count {
                outside = true
            }
            seen.append(Array(value))
            return true
        }
        try expect(!outside, "every value is a slice of the header")
        try expect(seen == expected, "forEachValue(\(name)) matches the reference reading",
                   "got \(seen.map(show)), expected \(expected.map(show))")
        var calls = 0
        CookieHeader.forEachValue(named: name, inUTF8: header) { _ in
            calls += 1
            return false
        }
        try expect(calls == min(1, expected.count), "returning false stops the walk", "\(calls) calls")
    }

    private static func referenceValues(_ header: [UInt8], name: [UInt8]) -> [[UInt8]] {
        func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
            var slice = bytes
            while let first = slice.first, first == 32 || first == 9 { slice = slice.dropFirst() }
            while let last = slice.last, last == 32 || last == 9 { slice = slice.dropLast() }
            return slice
        }
        var values: [[UInt8]] = []
        for pair in header.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false) {
            guard let equals = pair.firstIndex(of: UInt8(ascii: "=")) else { continue }
            guard trimmed(pair[..<equals]).elementsEqual(name) else { continue }
            var value = trimmed(pair[(equals + 1)...])
            if value.count >= 2, value.first == UInt8(ascii: "\""), value.last == UInt8(ascii: "\"") {
                value = value.dropFirst().dropLast()
            }
            values.append(Array(value))
        }
        return values
    }

    /// What a codec accepts is a well-formed id sent under its cookie name, spelled exactly as
    /// the codec itself would write it (so signed cookies have one accepted spelling per key),
    /// and `inspect` agrees with `presentedID`.
    private static func codecProperties(_ codec: SessionCookieCodec, _ header: UnsafeBufferPointer<UInt8>,
                                        signedAlternative: SessionCookieCodec?) throws(PropertyViolation) {
        let name = codec.configuration.cookieName
        let values = referenceValues(Array(header), name: Array(name.utf8))
        let presented = codec.presentedID(cookieHeader: header)
        let inspected = codec.inspect(cookieHeader: header)
        if let id = presented {
            try expect(SessionID(validating: id.rawValue) == id, "a presented id validates", show(id.rawValue.utf8))
            try expect(id.rawValue.utf8.count == SessionID.length && id.rawValue.utf8.allSatisfy(Base64.isURLAlphabet),
                       "a presented id is 32 characters of base64url", show(id.rawValue.utf8))
            var spellings: [[UInt8]] = []
            for writer in [codec, signedAlternative].compactMap({ $0 }) {
                if let value = try? writer.value(for: id) { spellings.append(Array(value.utf8)) }
            }
            try expect(spellings.count == (signedAlternative == nil ? 1 : 2), "the codec can write the cookie of an id it accepted")
            let accepted = values.first { value in spellings.contains(value) }
            try expect(accepted != nil, "the accepted value is one the codec writes for that id, sent under \(name)",
                       "id \(show(id.rawValue.utf8)) among \(values.map(show))")
            // The first value that decodes is the one taken.
            let firstDecoding = values.firstIndex { value in value.withUnsafeBufferPointer { codec.sessionID(fromCookieValue: $0) != nil } }
            let firstSpelling = values.firstIndex { spellings.contains($0) }
            try expect(firstDecoding == firstSpelling, "the first valid value wins")
            try expect(inspected == .valid(id), "inspect agrees with presentedID", "\(inspected)")
        } else {
            switch inspected {
            case .valid:
                throw PropertyViolation(property: "inspect finds no id that presentedID missed", detail: "")
            case .absent:
                try expect(values.isEmpty, "absent means no value under \(name)")
            case .malformed, .forged:
                try expect(!values.isEmpty, "malformed or forged means a value was sent under \(name)")
            }
            if inspected == .forged {
                try expect(codec.signer != nil, "only a signing codec calls a cookie forged")
            }
        }
        if codec.signer == nil, let presented {
            try expect(values.contains(Array(presented.rawValue.utf8)), "unsigned: the cookie value is the id itself")
        }
    }

    /// An id made from the input's bytes is written by every codec and read back, alone and
    /// in front of the rest of the header; the id's text decodes to the bytes it came from.
    private static func roundTrip(_ input: UnsafeRawBufferPointer) throws(PropertyViolation) {
        var random = InputRandom(input, salt: 1)
        var bytes = Array(input.prefix(SessionID.byteCount))
        while bytes.count < SessionID.byteCount { bytes.append(UInt8.random(in: 0...255, using: &random)) }
        guard let id = SessionID(validating: Base64.encode(bytes)) else {
            throw PropertyViolation(property: "24 bytes in base64url make a valid id", detail: show(bytes))
        }
        try expect(Base64.decodeURL(id.rawValue) == bytes, "an id decodes to its bytes")
        let rest = Array(input)
        for codec in [plain, hostPrefixed, signed] {
            for https in [false, true] {
                guard let setCookie = try? codec.setCookieHeader(for: id, requestIsHTTPS: https) else {
                    throw PropertyViolation(property: "a codec always writes the cookie of a valid id", detail: codec.configuration.cookieName)
                }
                let pair = Array(setCookie.utf8.prefix { $0 != UInt8(ascii: ";") })
                for header in [pair, pair + Array("; ".utf8) + rest] {
                    let read = header.withUnsafeBufferPointer { codec.presentedID(cookieHeader: $0) }
                    try expect(read == id, "the cookie a codec writes reads back as the same id",
                               "\(codec.configuration.cookieName), header \(show(header))")
                }
            }
        }
    }
}
