/// One fuzz target: the parsers that see one kind of client or server bytes, and the
/// properties they must keep on every input.
///
/// The same checks run in two places: under libFuzzer (`deploy/fuzz`, the `session-store-fuzz`
/// harness, built with `-sanitize=fuzzer,address`) and in the normal test suite, which replays
/// every committed seed (`Fuzz/corpus/<name>/`) and every input that once broke a property
/// (`Fuzz/regressions/<name>/`) without any sanitizer.
struct FuzzTarget: Sendable {
    /// The folder name under `Fuzz/corpus` and `Fuzz/regressions`, and the harness argument.
    let name: String
    /// What the target feeds and what it checks, one line.
    let summary: String
    /// Runs every property on one input; throws the first that does not hold.
    let check: @Sendable (UnsafeRawBufferPointer) throws(PropertyViolation) -> Void

    static let all: [FuzzTarget] = [
        .cookie, .fastCGIParams, .fastCGIFraming, .json, .form, .redisReply, .redisURL,
    ]

    static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }

    /// Runs the checks on bytes held in an array.
    func check(_ bytes: [UInt8]) throws(PropertyViolation) {
        try bytes.withUnsafeBytes { raw in Result { () throws(PropertyViolation) in try check(raw) } }.get()
    }
}

/// A property that did not hold: which one, and the values that broke it.
struct PropertyViolation: Error, CustomStringConvertible {
    let property: String
    let detail: String

    var description: String { detail.isEmpty ? property : "\(property): \(detail)" }
}

/// Throws when `condition` is false. The texts are only built on failure, so checks cost
/// nothing on the hot path of a fuzzer.
@inline(__always)
func expect(_ condition: Bool, _ property: @autoclosure () -> String,
            _ detail: @autoclosure () -> String = "") throws(PropertyViolation) {
    if !condition { throw PropertyViolation(property: property(), detail: detail()) }
}

/// Bytes shown in a violation: printable ASCII as is, the rest escaped.
func show(_ bytes: some Sequence<UInt8>) -> String {
    var text = "\""
    for byte in bytes.prefix(200) {
        switch byte {
        case 0x20..<0x7F where byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\"):
            text.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = String(byte, radix: 16)
            text += "\\x" + (hex.count == 1 ? "0" : "") + hex
        }
    }
    return text + "\""
}
