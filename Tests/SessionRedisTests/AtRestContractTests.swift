import XCTest
import SessionRedis
import TestSupport

// The store contract, unchanged, on the Redis store with each protection at rest: values
// sealed, ids hashed, and both. One redis-server per class, key prefixes per test.

/// Values sealed with AES-256-GCM (`--encryption-keys-file`).
final class SealedRedisSessionStoreContractTests: XCTestCase {
    nonisolated(unsafe) private static var redis: RedisServerProcess?

    override class func setUp() { redis = try? RedisServerProcess() }
    override class func tearDown() {
        redis?.stop()
        redis = nil
    }

    private func contract() throws -> SessionStoreContract<RedisSessionStore> {
        try AtRestFixture.contract(Self.redis, sealed: true, hashed: false)
    }

    func testContractCreateThenIncrement() throws { try contract().createThenIncrement() }
    func testContractWritesToAnUnknownIDWriteNothing() throws { try contract().writesToAnUnknownIDWriteNothing() }
    func testContractCreateRefusesAnExistingID() throws { try contract().createRefusesAnExistingID() }
    func testContractLoad() throws { try contract().loadReturnsFieldsWithTimesAndCanCountAVisit() }
    func testContractLoadMany() throws { try contract().loadManyReturnsLiveSessionsInOrder() }
    func testContractCallsAnsweredTogether() throws { try contract().callsAnsweredTogetherAnswerAsAlone() }
    func testContractUpdate() throws { try contract().updateIsADeltaWithinLimits() }
    func testContractLimitsOnEveryPath() throws { try contract().limitsHoldAfterCreateWithFieldsAndAfterIncrements() }
    func testContractNoResurrection() throws { try contract().writesAfterDestroyDoNotResurrect() }
    func testContractAliasRotation() throws { try contract().aliasRotationPointsAtTheNewIDAndHoldsNoData() }
    func testContractSupersededRotation() throws { try contract().supersededRotationLeadsNowhere() }
    func testContractRotationWithoutGrace() throws { try contract().rotationWithoutGraceEndsTheOldID() }
    func testContractUserIndex() throws { try contract().userIndexHoldsEntriesUntilUnindexedOrRevoked() }
    func testContractHealth() throws { try contract().healthyStorePassesTheHealthCheck() }
    func testContractNonceClaimedOnce() throws { try contract().aNonceIsClaimedOnceWithinItsLifetimeOnTheStoresClock() }
    func testContractLoginAttempts() throws { try contract().loginAttemptsAreCountedAgainstALimitWithinAWindow() }
}

/// Sessions named by SHA-256 of their ids (`--store-id-hashes yes`).
final class HashedIDRedisSessionStoreContractTests: XCTestCase {
    nonisolated(unsafe) private static var redis: RedisServerProcess?

    override class func setUp() { redis = try? RedisServerProcess() }
    override class func tearDown() {
        redis?.stop()
        redis = nil
    }

    private func contract() throws -> SessionStoreContract<RedisSessionStore> {
        try AtRestFixture.contract(Self.redis, sealed: false, hashed: true)
    }

    func testContractCreateThenIncrement() throws { try contract().createThenIncrement() }
    func testContractWritesToAnUnknownIDWriteNothing() throws { try contract().writesToAnUnknownIDWriteNothing() }
    func testContractCreateRefusesAnExistingID() throws { try contract().createRefusesAnExistingID() }
    func testContractLoad() throws { try contract().loadReturnsFieldsWithTimesAndCanCountAVisit() }
    func testContractLoadMany() throws { try contract().loadManyReturnsLiveSessionsInOrder() }
    func testContractCallsAnsweredTogether() throws { try contract().callsAnsweredTogetherAnswerAsAlone() }
    func testContractUpdate() throws { try contract().updateIsADeltaWithinLimits() }
    func testContractLimitsOnEveryPath() throws { try contract().limitsHoldAfterCreateWithFieldsAndAfterIncrements() }
    func testContractNoResurrection() throws { try contract().writesAfterDestroyDoNotResurrect() }
    func testContractAliasRotation() throws { try contract().aliasRotationPointsAtTheNewIDAndHoldsNoData() }
    func testContractSupersededRotation() throws { try contract().supersededRotationLeadsNowhere() }
    func testContractRotationWithoutGrace() throws { try contract().rotationWithoutGraceEndsTheOldID() }
    func testContractUserIndex() throws { try contract().userIndexHoldsEntriesUntilUnindexedOrRevoked() }
    func testContractHealth() throws { try contract().healthyStorePassesTheHealthCheck() }
    func testContractNonceClaimedOnce() throws { try contract().aNonceIsClaimedOnceWithinItsLifetimeOnTheStoresClock() }
    func testContractLoginAttempts() throws { try contract().loginAttemptsAreCountedAgainstALimitWithinAWindow() }
}

/// Both.
final class SealedAndHashedRedisSessionStoreContractTests: XCTestCase {
    nonisolated(unsafe) private static var redis: RedisServerProcess?

    override class func setUp() { redis = try? RedisServerProcess() }
    override class func tearDown() {
        redis?.stop()
        redis = nil
    }

    private func contract() throws -> SessionStoreContract<RedisSessionStore> {
        try AtRestFixture.contract(Self.redis, sealed: true, hashed: true)
    }

    func testContractCreateThenIncrement() throws { try contract().createThenIncrement() }
    func testContractWritesToAnUnknownIDWriteNothing() throws { try contract().writesToAnUnknownIDWriteNothing() }
    func testContractCreateRefusesAnExistingID() throws { try contract().createRefusesAnExistingID() }
    func testContractLoad() throws { try contract().loadReturnsFieldsWithTimesAndCanCountAVisit() }
    func testContractLoadMany() throws { try contract().loadManyReturnsLiveSessionsInOrder() }
    func testContractCallsAnsweredTogether() throws { try contract().callsAnsweredTogetherAnswerAsAlone() }
    func testContractUpdate() throws { try contract().updateIsADeltaWithinLimits() }
    func testContractLimitsOnEveryPath() throws { try contract().limitsHoldAfterCreateWithFieldsAndAfterIncrements() }
    func testContractNoResurrection() throws { try contract().writesAfterDestroyDoNotResurrect() }
    func testContractAliasRotation() throws { try contract().aliasRotationPointsAtTheNewIDAndHoldsNoData() }
    func testContractSupersededRotation() throws { try contract().supersededRotationLeadsNowhere() }
    func testContractRotationWithoutGrace() throws { try contract().rotationWithoutGraceEndsTheOldID() }
    func testContractUserIndex() throws { try contract().userIndexHoldsEntriesUntilUnindexedOrRevoked() }
    func testContractHealth() throws { try contract().healthyStorePassesTheHealthCheck() }
    func testContractNonceClaimedOnce() throws { try contract().aNonceIsClaimedOnceWithinItsLifetimeOnTheStoresClock() }
    func testContractLoginAttempts() throws { try contract().loginAttemptsAreCountedAgainstALimitWithinAWindow() }
}
