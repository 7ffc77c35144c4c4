@testable import GatewayCore
import NIOCore
import Testing

/// `rate_limit` by source before credentials, by identity and in total after, on a
/// clock the test sets.
@Suite struct RateLimiterTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    @Test func aBucketRefillsOneTokenPerInterval() {
        let limiter = RateLimiter(interval: .seconds(1), burst: 2, now: Self.start)
        let key = RateLimiter.Key.source("10.0.0.1")
        #expect(limiter.tryAcquire(key, now: Self.start))
        #expect(limiter.tryAcquire(key, now: Self.start))
        #expect(!limiter.tryAcquire(key, now: Self.start))
        #expect(!limiter.tryAcquire(key, now: Self.start + .milliseconds(500)))
        #expect(limiter.tryAcquire(key, now: Self.start + .milliseconds(1000)))
        #expect(!limiter.tryAcquire(key, now: Self.start + .milliseconds(1000)))
        #expect(limiter.tryAcquire(key, now: Self.start + .seconds(10)))
    }

    /// The case: ten requests without credentials from a stranger's address,
    /// then the scraper's own: the stranger spent only its own bucket.
    @Test func aStrangersFailuresDoNotSpendTheScrapersBudget() {
        let limiter = RateLimiter(interval: .seconds(1), burst: 3, now: Self.start)
        let strangerAllowed = (0..<10).filter { _ in limiter.tryAcquire(.source("10.0.0.66"), now: Self.start) }.count
        #expect(strangerAllowed == 3)
        #expect(limiter.tryAcquire(.source("10.0.0.9"), now: Self.start), "the scraper's address has its own bucket")
        #expect(limiter.tryAcquire(.identity("prometheus"), now: Self.start), "and the total was not touched")
    }

    /// After credentials, a request is charged to its identity and to the total: the
    /// total is `rate_limit` as exporter-toolkit means it, shared by every identity.
    @Test func identitiesShareTheTotal() {
        let limiter = RateLimiter(interval: .seconds(1), burst: 2, now: Self.start)
        #expect(limiter.tryAcquire(.identity("a"), now: Self.start))
        #expect(limiter.tryAcquire(.identity("a"), now: Self.start))
        #expect(!limiter.tryAcquire(.identity("b"), now: Self.start), "the total is spent")
        // b's refused request took nothing from b: once the total refills, b has both.
        #expect(limiter.tryAcquire(.identity("b"), now: Self.start + .seconds(2)))
        #expect(limiter.tryAcquire(.identity("b"), now: Self.start + .seconds(2)))
        #expect(!limiter.tryAcquire(.identity("b"), now: Self.start + .seconds(2)))
    }

    @Test func theKeyTableIsBounded() {
        let limiter = RateLimiter(interval: .seconds(1), burst: 1, maximumKeys: 3, now: Self.start)
        for index in 0..<100 {
            #expect(limiter.tryAcquire(.source("10.0.0.\(index)"), now: Self.start + .milliseconds(Int64(index))))
        }
        #expect(limiter.keyCount == 3)
    }

    @Test func aZeroIntervalIsNoLimit() {
        let limiter = RateLimiter(interval: .zero, burst: 1, now: Self.start)
        #expect((0..<100).allSatisfy { _ in limiter.tryAcquire(.source("x"), now: Self.start) })
    }
}
