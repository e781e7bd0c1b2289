import Glibc

/// The `session-fcgi` command: parse, build, run. Returns the process exit status.
public enum CommandLineTool {
    public static func main(arguments: [String]) -> Int32 {
        do {
            switch try AppConfiguration.parse(arguments: Array(arguments.dropFirst()), environment: processEnvironment()) {
            case .help(let text):
                writeStandardOutput(text)
                return 0
            case .serve(let configuration):
                try Application(configuration: configuration).run()
                return 0
            }
        } catch let error as ConfigurationError {
            writeStandardError("session-fcgi: \(error)\n")
            return 64
        } catch {
            writeStandardError("session-fcgi: \(error)\n")
            return 1
        }
    }

    /// The process environment as a dictionary (no Foundation).
    static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var cursor: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = environ
        while let entry = cursor.pointee {
            let pair = String(cString: entry)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            cursor += 1
        }
        return result
    }

    static func writeStandardOutput(_ text: String) { write(fd: 1, text) }
    static func writeStandardError(_ text: String) { write(fd: 2, text) }

    private static func write(fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = Glibc.write(fd, bytes.baseAddress, bytes.count) }
    }
}
