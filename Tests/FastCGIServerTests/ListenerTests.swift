import Foundation
import Glibc
import XCTest
@testable import FastCGIServer

/// `--listen` on a Unix socket path (new-user review s20): libfcgi deletes whatever is at the
/// path and binds anew, so a second instance took over the socket of a running one (which
/// then served nobody), replaced a regular file, and a missing folder gave a bare
/// "bind/listen" and an exit.
final class ListenerTests: XCTestCase {
    func testASocketInUseAFileAndAMissingFolderAreRefusedByName() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("listener-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/a.sock"

        let first = try Listener(.unix(path: path), backlog: 16)
        defer { close(first.descriptor) }
        XCTAssertThrowsError(try Listener(.unix(path: path), backlog: 16)) { error in
            XCTAssertTrue("\(error)".contains("already in use by a running process"), "\(error)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "the running one keeps its socket")

        // A socket nobody accepts on any more (a stopped instance's) is taken over.
        close(first.descriptor)
        let second = try Listener(.unix(path: path), backlog: 16)
        close(second.descriptor)

        let file = folder + "/not-a-socket"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data("keep me\n".utf8)))
        XCTAssertThrowsError(try Listener(.unix(path: file), backlog: 16)) { error in
            XCTAssertTrue("\(error)".contains("not a socket"), "\(error)")
        }
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "keep me\n")

        XCTAssertThrowsError(try Listener(.unix(path: folder + "/missing/a.sock"), backlog: 16)) { error in
            XCTAssertTrue("\(error)".contains("No such file or directory") && "\(error)".contains("/missing/a.sock"), "\(error)")
        }
    }
}
