import Foundation
import XCTest

/// Replays, without any sanitizer, every committed seed (`Fuzz/corpus/<target>/`) and every
/// input that once broke a property (`Fuzz/regressions/<target>/`) through the same checks the
/// fuzzers run: a bug found by fuzzing that comes back fails here.
final class FuzzRegressionTests: XCTestCase {
    private static let fuzzFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    private func inputs(_ kind: String, _ target: FuzzTarget) throws -> [URL] {
        let folder = Self.fuzzFolder.appendingPathComponent(kind).appendingPathComponent(target.name)
        guard FileManager.default.fileExists(atPath: folder.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    private func replay(_ kind: String, _ target: FuzzTarget) throws -> Int {
        let files = try inputs(kind, target)
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: file))
            do {
                try target.check(bytes)
            } catch {
                XCTFail("\(target.name) \(kind)/\(file.lastPathComponent): \(error)")
            }
        }
        return files.count
    }

    func testEveryTargetHasSeedsThatKeepItsProperties() throws {
        XCTAssertFalse(FuzzTarget.all.isEmpty)
        for target in FuzzTarget.all {
            let count = try replay("corpus", target)
            XCTAssertGreaterThan(count, 0, "\(target.name) has no seed in Fuzz/corpus/\(target.name)")
        }
    }

    func testEveryRegressionInputKeepsItsProperties() throws {
        for target in FuzzTarget.all {
            _ = try replay("regressions", target)
        }
        // Every regression folder belongs to a target (a renamed target must take its inputs along).
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: Self.fuzzFolder.appendingPathComponent("regressions").path)) ?? []
        for folder in folders where !folder.hasPrefix(".") {
            XCTAssertNotNil(FuzzTarget.named(folder), "Fuzz/regressions/\(folder) names no fuzz target")
        }
    }
}
