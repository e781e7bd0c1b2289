import Foundation

/// Sends one request straight to a FastCGI instance with Debian's `cgi-fcgi` (libfcgi-bin),
/// bypassing nginx. Params are the FastCGI environment; the reply is parsed as a CGI response.
public enum FastCGIClient {
    public static func request(port: Int, params: [String: String], body: [UInt8] = []) throws -> HTTPResponse {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.tool("cgi-fcgi"))
        process.arguments = ["-bind", "-connect", "127.0.0.1:\(port)"]
        var environment = ["PATH": "/usr/bin:/bin"]
        for (name, value) in params { environment[name] = value }
        if !body.isEmpty { environment["CONTENT_LENGTH"] = String(body.count) }
        process.environment = environment
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data(body))
        try? input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return try parseCGI(Array(data))
    }

    /// `GET path` with an optional cookie.
    public static func get(port: Int, path: String, cookie: String? = nil) throws -> HTTPResponse {
        var params = ["REQUEST_METHOD": "GET", "DOCUMENT_URI": path, "REQUEST_URI": path, "SERVER_PROTOCOL": "HTTP/1.1"]
        if let cookie { params["HTTP_COOKIE"] = cookie }
        return try request(port: port, params: params)
    }

    static func parseCGI(_ bytes: [UInt8]) throws -> HTTPResponse {
        guard let end = bytes.firstRange(of: [13, 10, 13, 10]) else {
            throw TestSupportError.protocolError("no CGI header block (\(bytes.count) bytes)")
        }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
        var status = 200
        var headers: [(name: String, value: String)] = []
        for line in head.components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name.lowercased() == "status" { status = Int(value.prefix(3)) ?? 0 } else { headers.append((name, value)) }
        }
        return HTTPResponse(status: status, headers: headers, body: Array(bytes[end.upperBound...]))
    }
}
