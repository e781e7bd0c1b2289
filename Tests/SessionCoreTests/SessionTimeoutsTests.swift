import XCTest
import SessionCore

/// The touch rule every store applies (`SessionTimeouts.touchIsDue`).
final class SessionTimeoutsTests: XCTestCase {
    func testDefaultIntervalIsAThirtiethOfTheIdleTimeoutAtMostAMinute() {
        XCTAssertEqual(SessionTimeouts().touchIntervalSeconds, 60)
        XCTAssertEqual(SessionTimeouts(idleSeconds: 600).touchIntervalSeconds, 20)
        XCTAssertEqual(SessionTimeouts(idleSeconds: 29).touchIntervalSeconds, 0)
        XCTAssertEqual(SessionTimeouts(idleSeconds: 7 * 86400).touchIntervalSeconds, 60)
    }

    func testTouchIsDueOnceTheIntervalHasPassed() {
        let timeouts = SessionTimeouts(idleSeconds: 1800, touchIntervalSeconds: 60)
        XCTAssertFalse(timeouts.touchIsDue(now: 1000, lastTouched: 1000))
        XCTAssertFalse(timeouts.touchIsDue(now: 1059, lastTouched: 1000))
        XCTAssertTrue(timeouts.touchIsDue(now: 1060, lastTouched: 1000))
        XCTAssertTrue(timeouts.touchIsDue(now: 1000, lastTouched: nil), "a session without a last touch (an older layout)")
        XCTAssertTrue(SessionTimeouts(idleSeconds: 1800, touchIntervalSeconds: 0).touchIsDue(now: 1000, lastTouched: 1000))
    }

    /// A last touch after now (the clock stepped back, or the key moved to a node whose clock is
    /// behind) must not hold renewals off for longer than the interval: the session is renewed.
    func testALastTouchInTheFutureIsRenewed() {
        let timeouts = SessionTimeouts(idleSeconds: 1800, touchIntervalSeconds: 60)
        XCTAssertTrue(timeouts.touchIsDue(now: 1000, lastTouched: 1001))
        XCTAssertTrue(timeouts.touchIsDue(now: 1000, lastTouched: 5000))
    }

    /// An interval of half the idle timeout or more would let a session in use expire; whatever
    /// a library caller assigns, the stores apply at most half.
    func testTheIntervalAppliedNeverExceedsHalfTheIdleTimeout() {
        var timeouts = SessionTimeouts(idleSeconds: 100, touchIntervalSeconds: 500)
        XCTAssertEqual(timeouts.effectiveTouchInterval, 50)
        XCTAssertTrue(timeouts.touchIsDue(now: 1050, lastTouched: 1000))
        timeouts.touchIntervalSeconds = -5
        XCTAssertEqual(timeouts.effectiveTouchInterval, 0)
        timeouts.touchIntervalSeconds = 30
        XCTAssertEqual(timeouts.effectiveTouchInterval, 30)
    }
}
