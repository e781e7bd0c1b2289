import FastCGIServer
import XCTest

final class FastCGIParamsTests: XCTestCase {
    /// nginx 1.22 sends `Cookie: a=1` and `Cookie: sid=x` as two HTTP_COOKIE params.
    private func repeatedCookies() -> FastCGIParams {
        var params = FastCGIParams()
        params.append(name: Array("REQUEST_METHOD".utf8), value: Array("GET".utf8))
        params.append(name: Array("HTTP_COOKIE".utf8), value: Array("a=1".utf8))
        params.append(name: Array("HTTP_COOKIEX".utf8), value: Array("not=this".utf8))
        params.append(name: Array("HTTP_COOKIE".utf8), value: Array("sid=abc; b=2".utf8))
        params.append(name: Array("HTTP_COOKIE".utf8), value: [])
        return params
    }

    func testForEachValueVisitsEveryValueInOrder() {
        var seen: [[UInt8]] = []
        repeatedCookies().forEachValue(of: "HTTP_COOKIE") { seen.append(Array($0)) }
        XCTAssertEqual(seen, [Array("a=1".utf8), Array("sid=abc; b=2".utf8), []])
    }

    func testForEachValueOfAnAbsentNameVisitsNothing() {
        var calls = 0
        repeatedCookies().forEachValue(of: "HTTP_COOKI") { _ in calls += 1 }
        repeatedCookies().forEachValue(of: "") { _ in calls += 1 }
        FastCGIParams().forEachValue(of: "HTTP_COOKIE") { _ in calls += 1 }
        XCTAssertEqual(calls, 0)
    }

    func testForEachValueRethrowsAndStops() {
        struct Stop: Error {}
        var calls = 0
        XCTAssertThrowsError(try repeatedCookies().forEachValue(of: "HTTP_COOKIE") { _ in
            calls += 1
            throw Stop()
        })
        XCTAssertEqual(calls, 1)
    }

    func testFirstValueAPIsAreUnchanged() {
        let params = repeatedCookies()
        XCTAssertEqual(params["HTTP_COOKIE"], "a=1")
        XCTAssertEqual(params.length(of: "HTTP_COOKIE"), 3)
        XCTAssertTrue(params.has("HTTP_COOKIE", equalTo: "a=1"))
        XCTAssertEqual(params.values(of: "HTTP_COOKIE"), ["a=1", "sid=abc; b=2", ""])
        XCTAssertEqual(params.values(of: "REQUEST_METHOD"), ["GET"])
        XCTAssertEqual(params.count, 5)
    }

    func testValuesCopiedFromLibfcgiEnvironmentKeepEveryRepeat() {
        // The same entries as libfcgi lays them out: NAME=VALUE strings, one per param.
        var params = FastCGIParams()
        for entry in ["HTTP_COOKIE=a=1", "HTTPS=on", "HTTP_COOKIE=sid=xyz"] {
            let bytes = Array(entry.utf8)
            let equals = bytes.firstIndex(of: UInt8(ascii: "=")) ?? 0
            bytes.withUnsafeBytes { params.append(entry: $0, separatorAt: equals) }
        }
        XCTAssertEqual(params.values(of: "HTTP_COOKIE"), ["a=1", "sid=xyz"])
        XCTAssertEqual(params["HTTPS"], "on")
    }
}
