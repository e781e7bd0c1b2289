import CLibFuzzer
import Glibc
import Synchronization

/// `session-store-fuzz TARGET [libFuzzer options and corpus folders]`: runs libFuzzer on one
/// target's checks. A property that does not hold stops the run like a crash, so libFuzzer
/// saves the input. Built only by `deploy/fuzz` (with `-sanitize=fuzzer,address`).
@main
enum FuzzMain {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2, let target = FuzzTarget.named(arguments[1]) else {
            var usage = "usage: session-store-fuzz TARGET [libFuzzer options] [corpus folders]\ntargets:\n"
            for target in FuzzTarget.all { usage += "  \(target.name): \(target.summary)\n" }
            writeError(usage)
            exit(2)
        }
        selected.withLock { $0 = target }
        // libFuzzer sees the arguments without the target name.
        var argv = [CommandLine.unsafeArgv[0]] + (2..<Int(CommandLine.argc)).map { CommandLine.unsafeArgv[$0] } + [nil]
        var argc = Int32(argv.count - 1)
        let status = argv.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var base = buffer.baseAddress
            return LLVMFuzzerRunDriver(&argc, &base) { data, size in
                FuzzMain.run(data, size)
            }
        }
        exit(status)
    }

    private static let selected = Mutex<FuzzTarget?>(nil)

    private static func run(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        guard let target = selected.withLock({ $0 }) else { return -1 }
        do {
            try target.check(UnsafeRawBufferPointer(start: data, count: size))
        } catch {
            writeError("\(target.name): property violated: \(error)\n")
            abort()
        }
        return 0
    }

    private static func writeError(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    }
}
