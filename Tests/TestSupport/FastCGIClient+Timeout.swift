import Foundation

extension FastCGIClient {
    /// `GET path` with `cgi-fcgi`, failing (instead of hanging) when no answer comes within
    /// `timeout`: cgi-fcgi itself waits forever for a server that never serves it.
    public static func get(port: Int, path: String, timeout: TimeInterval) throws -> HTTPResponse {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.tool("cgi-fcgi"))
        process.arguments = ["-bind", "-connect", "127.0.0.1:\(port)"]
        process.environment = ["PATH": "/usr/bin:/bin", "REQUEST_METHOD": "GET", "DOCUMENT_URI": path,
                               "REQUEST_URI": path, "SERVER_PROTOCOL": "HTTP/1.1"]
        let output = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TestSupportError.protocolError("cgi-fcgi got no answer within \(timeout) s")
        }
        return try parseCGI(Array(output.fileHandleForReading.readDataToEndOfFile()))
    }
}
