import FastCGIServer
import Glibc

extension FuzzTarget {
    /// Bytes arriving on a FastCGI connection, and a well-formed request built around them.
    static let fastCGIFraming = FuzzTarget(
        name: "fastcgi-framing",
        summary: "connection bytes → RequestFraming.inspect, checked against libfcgi reading the same bytes",
        check: FastCGIFramingProperties.check
    )
}

/// Properties of `RequestFraming.inspect`, with libfcgi as the oracle: a worker hands a
/// connection to libfcgi only when the framing says a whole request is there, so libfcgi must
/// then never need a byte that has not arrived.
enum FastCGIFramingProperties {
    static func check(_ input: UnsafeRawBufferPointer) throws(PropertyViolation) {
        try checkStream(input)
        // The same bytes as the params of a request that nginx could have sent.
        var random = InputRandom(input, salt: 2)
        let request = FastCGIRecords.request(params: input, body: Array(input.suffix(Int.random(in: 0...64, using: &random))), using: &random)
        try request.bytes.withUnsafeBytes { raw in Result { () throws(PropertyViolation) in try checkRequest(raw, request, params: input) } }.get()
    }

    /// A well-formed request around `params`: complete, and read by libfcgi exactly as built.
    private static func checkRequest(_ raw: UnsafeRawBufferPointer, _ request: FastCGIRecords.Request,
                                 params input: UnsafeRawBufferPointer) throws(PropertyViolation) {
        // Params that declare more than the limit, or end past it, are refused: libfcgi would
        // allocate what they declare, and aborts the process when it cannot.
        let oversized = FastCGIRecords.declaredBytes(paramsStream: input) > RequestFraming.maxParamsBytes
            || request.paramsEnd > RequestFraming.maxParamsBytes
        let verdict = RequestFraming.inspect(raw)
        try expect(verdict == (oversized ? .refused : .complete(length: raw.count)), "a whole request is complete unless its params are oversized",
                   "\(verdict), declared \(FastCGIRecords.declaredBytes(paramsStream: input)), params end at \(request.paramsEnd)")
        try checkStream(raw)
        guard !oversized, let reading = LibfcgiReading.read(raw, peer: .staysSilent) else { return }
        // libfcgi's entries are C strings: a NUL in a name or value ends the entry there.
        let expected = FastCGIParamsProperties.environmentEntries(fromParamsStream: input).map { Array($0.prefix { $0 != 0 }) }
        let paramsParse = FastCGIRecords.parsesWhole(paramsStream: input)
        try expect(reading.accepted == paramsParse, "libfcgi accepts the request exactly when its params parse",
                   "accepted: \(reading.accepted)")
        guard reading.accepted else { return }
        try expect(reading.environment == expected, "libfcgi's environment is the params as sent",
                   "\(reading.environment.map(show)) vs \(expected.map(show))")
        try expect(reading.body == request.body && reading.bodyEnded && reading.bodyError == 0,
                   "libfcgi reads the body to its end", "\(reading.body.count) of \(request.body.count) bytes, error \(reading.bodyError)")
    }

    /// The verdict on any bytes: a prefix that is decided (complete, or not FastCGI) stays
    /// decided the same way as bytes arrive; `incomplete(n)` names exactly the first length at
    /// which the verdict can change; and a complete verdict means libfcgi reads the request
    /// without wanting more.
    private static func checkStream(_ bytes: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let whole = RequestFraming.inspect(bytes)
        var length = 0
        while true {
            let verdict = RequestFraming.inspect(UnsafeRawBufferPointer(rebasing: bytes[0..<length]))
            guard case .incomplete(let needed) = verdict else {
                try expect(whole == verdict, "a decided verdict does not change as bytes arrive", "\(verdict) at \(length) bytes, \(whole) for all")
                break
            }
            try expect(needed > length, "incomplete asks for more bytes than it has", "\(needed) needed at \(length)")
            if needed - 1 > length && needed - 1 <= bytes.count {
                let before = RequestFraming.inspect(UnsafeRawBufferPointer(rebasing: bytes[0..<needed - 1]))
                try expect(before == verdict, "nothing changes before the bytes it asked for", "\(before) at \(needed - 1)")
            }
            guard needed <= bytes.count else {
                try expect(whole == verdict, "the verdict on all bytes is the last one", "\(whole) vs \(verdict)")
                break
            }
            length = needed
        }
        guard case .complete(let requestLength) = whole else { return }
        try expect(requestLength <= bytes.count, "a complete request ends within the bytes", "\(requestLength) of \(bytes.count)")
        // libfcgi needs nothing past the request's length: given only those bytes and then the
        // end of stream, it reads the same as from all of them with a peer that stays silent
        // (what the worker relies on to close a connection that sent a next request early).
        guard let closing = LibfcgiReading.read(UnsafeRawBufferPointer(rebasing: bytes[0..<requestLength]), peer: .closesAfterSending),
              let silent = LibfcgiReading.read(bytes, peer: .staysSilent) else { return }
        try expect(silent.bodyError != EAGAIN, "libfcgi never waits for bytes after a complete request",
                   "body \(silent.body.count) bytes")
        try expect(closing == silent, "libfcgi reads a complete request the same whether or not more could come",
                   "closing: \(closing.accepted) \(closing.bodyError), silent: \(silent.accepted) \(silent.bodyError)")
        // What the worker measures of libfcgi's read-ahead (to close a connection whose next
        // request libfcgi swallowed) is exact: nothing after the request alone, and after the
        // request every byte that followed it, when all fit in libfcgi's one read of 8 KiB.
        if closing.accepted && closing.bodyEnded {
            try expect(closing.readAhead == 0, "nothing is read ahead past a request that ends the bytes", "\(closing.readAhead)")
        }
        if silent.accepted && silent.bodyEnded {
            let trailing = bytes.count - requestLength
            try expect(bytes.count <= 8192 ? silent.readAhead == trailing : (0...trailing).contains(silent.readAhead),
                       "the read-ahead is what followed the request", "\(silent.readAhead) of \(trailing) trailing bytes")
        }
        // And libfcgi reads exactly the records the framing walked: the params and the body
        // they carry (a record libfcgi parsed where the framing saw padding or another request
        // would show here).
        let walked = FastCGIRecords.streams(of: UnsafeRawBufferPointer(rebasing: bytes[0..<requestLength]))
        let (parses, expected) = walked.params.withUnsafeBytes { params in
            (FastCGIRecords.parsesWhole(paramsStream: params),
             FastCGIParamsProperties.environmentEntries(fromParamsStream: params).map { Array($0.prefix { $0 != 0 }) })
        }
        try expect(silent.accepted == parses, "libfcgi accepts a complete request exactly when the params walked parse",
                   "accepted: \(silent.accepted)")
        guard silent.accepted else { return }
        try expect(silent.environment == expected, "libfcgi's environment is the params the framing walked",
                   "\(silent.environment.count) entries vs \(expected.count)")
        try expect(silent.body == walked.body && silent.bodyEnded, "libfcgi's body is the STDIN the framing walked",
                   "\(silent.body.count) bytes vs \(walked.body.count)")
    }
}

/// FastCGI records as nginx writes them (version 1, one request per connection).
enum FastCGIRecords {
    struct Request {
        var bytes: [UInt8]
        var body: [UInt8]
        /// Where the empty PARAMS record ends.
        var paramsEnd: Int
    }

    static let beginRequest: UInt8 = 1
    static let params: UInt8 = 4
    static let standardInput: UInt8 = 5

    /// BEGIN_REQUEST (responder, keep connection), `params` cut into PARAMS records at random
    /// points, the empty PARAMS record, `body` in STDIN records, the empty STDIN record.
    static func request(params: UnsafeRawBufferPointer, body: [UInt8], using random: inout InputRandom) -> Request {
        let id = UInt16.random(in: 1...UInt16.max, using: &random)
        var bytes: [UInt8] = []
        append(beginRequest, id: id, content: [0, 1, 1, 0, 0, 0, 0, 0], to: &bytes)
        let paramBytes = Array(params)
        for piece in pieces(paramBytes, using: &random) { append(self.params, id: id, content: piece, to: &bytes) }
        append(self.params, id: id, content: [], to: &bytes)
        let paramsEnd = bytes.count
        for piece in pieces(body, using: &random) { append(standardInput, id: id, content: piece, to: &bytes) }
        append(standardInput, id: id, content: [], to: &bytes)
        return Request(bytes: bytes, body: body, paramsEnd: paramsEnd)
    }

    /// The PARAMS and STDIN contents of the request in `bytes`, walked record by record as
    /// `RequestFraming` walks them (for bytes it judged complete).
    static func streams(of bytes: UnsafeRawBufferPointer) -> (params: [UInt8], body: [UInt8]) {
        var params: [UInt8] = []
        var body: [UInt8] = []
        var offset = 0
        var paramsEnded = false
        while offset + 8 <= bytes.count {
            let type = bytes[offset + 1]
            let length = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let content = offset + 8
            let end = content + length + Int(bytes[offset + 6])
            guard end <= bytes.count else { break }
            if type == self.params {
                if length == 0 { paramsEnded = true } else { params += bytes[content..<content + length] }
            } else if type == standardInput && paramsEnded {
                if length == 0 { break }
                body += bytes[content..<content + length]
            }
            offset = end
        }
        return (params, body)
    }

    /// Whether a PARAMS stream is a whole number of name-value pairs (libfcgi refuses the
    /// request otherwise).
    static func parsesWhole(paramsStream input: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        func length() -> Int? {
            guard index < input.count else { return nil }
            if input[index] < 0x80 { index += 1; return Int(input[index - 1]) }
            guard index + 4 <= input.count else { return nil }
            let value = Int(input[index] & 0x7F) << 24 | Int(input[index + 1]) << 16 | Int(input[index + 2]) << 8 | Int(input[index + 3])
            index += 4
            return value
        }
        while index < input.count {
            guard let name = length(), let value = length(), name + value <= input.count - index else { return false }
            index += name + value
        }
        return true
    }

    /// The name and value bytes a PARAMS stream declares, counting every pair whose two
    /// lengths are there, even where the stream ends before the pair's bytes.
    static func declaredBytes(paramsStream input: UnsafeRawBufferPointer) -> Int {
        var index = 0
        var declared = 0
        func length() -> Int? {
            guard index < input.count else { return nil }
            if input[index] < 0x80 { index += 1; return Int(input[index - 1]) }
            guard index + 4 <= input.count else { return nil }
            let value = Int(input[index] & 0x7F) << 24 | Int(input[index + 1]) << 16 | Int(input[index + 2]) << 8 | Int(input[index + 3])
            index += 4
            return value
        }
        while let name = length(), let value = length() {
            declared += name + value
            index += name + value
        }
        return declared
    }

    private static func pieces(_ bytes: [UInt8], using random: inout InputRandom) -> [ArraySlice<UInt8>] {
        var cuts = random.cuts(in: bytes.count, maximum: 4)
        cuts.append(bytes.count)
        var start = 0
        var result: [ArraySlice<UInt8>] = []
        for cut in cuts where cut > start {
            // A record holds at most 65535 bytes of content.
            while cut - start > 65535 {
                result.append(bytes[start..<start + 65535])
                start += 65535
            }
            result.append(bytes[start..<cut])
            start = cut
        }
        return result
    }

    /// One record, padded as nginx pads: content plus padding is a multiple of 8. (libfcgi 2.4.2
    /// does not skip the padding of a BEGIN_REQUEST record or of the empty record that ends the
    /// params, which nginx never pads; the raw inputs explore that.)
    private static func append(_ type: UInt8, id: UInt16, content: some Collection<UInt8>, to bytes: inout [UInt8]) {
        let padding = UInt8((8 - content.count % 8) % 8)
        bytes += [1, type, UInt8(id >> 8), UInt8(id & 0xFF), UInt8(content.count >> 8), UInt8(content.count & 0xFF), padding, 0]
        bytes += content
        bytes += [UInt8](repeating: 0, count: Int(padding))
    }
}
