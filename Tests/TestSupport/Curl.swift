import Foundation

/// Requests through Debian's curl, for what the raw-socket HTTPClient cannot speak: TLS.
/// Certificates are not verified (the tests make their own self-signed ones).
public enum Curl {
    /// One HTTP/1.1 request; the response as it came (chunks decoded by HTTPClient's parser).
    public static func request(_ url: String, method: String = "GET", headers: [(String, String)] = [],
                               body: [UInt8]? = nil, extraArguments: [String] = []) throws -> HTTPResponse {
        var arguments = ["-sk", "--http1.1", "-i", "--raw", "-m", "20", "-X", method]
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if body != nil { arguments += ["--data-binary", "@-"] }
        let result = try run(arguments + extraArguments + [url], input: body ?? [])
        guard result.status == 0 else {
            throw TestSupportError.protocolError("curl exited with \(result.status) for \(url)")
        }
        return try HTTPClient.parse(result.output)
    }

    /// Runs curl with `arguments`; returns its exit status and standard output.
    public static func run(_ arguments: [String], input: [UInt8] = []) throws -> (status: Int32, output: [UInt8]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.tool("curl"))
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        stdin.fileHandleForWriting.write(Data(input))
        try? stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, Array(output))
    }
}
