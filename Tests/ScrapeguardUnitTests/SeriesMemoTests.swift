import Foundation
@testable import MetricsFilter
import Testing
import TestSupport

/// The series memo (`SeriesMemo`): what it replays is what filtering in full gives,
/// whatever its hash says, its budget allows or the policy became. (Every filter test
/// that goes through `FilterHarness.run` also runs cold and warm through a memo.)
@Suite struct SeriesMemoTests {
    /// Filters `body` once through `memo` (nil: a fresh filter without one).
    static func filter(_ body: String, _ policy: FilterPolicy, format: ExpositionFormat = .text,
                       memo: SeriesMemo?) -> (String, FilterReport) {
        FilterHarness.filterOnce(body, policy, format: format, tracker: nil, chunk: nil, memo: memo)
    }

    static let body = """
        # TYPE requests_total counter
        requests_total{path="/a",user="ann"} 1
        requests_total{path="/a",user="bob"} 2
        requests_total{path="/b",user="ann"} 3
        requests_total{path="/a",user="anm"} 4
        requests_total{path="/a"} 5
        requests_total 6
        # TYPE latency_seconds histogram
        latency_seconds_bucket{le="0.1"} 1
        latency_seconds_bucket{le="1"} 2
        latency_seconds_bucket{le="+Inf"} 3
        latency_seconds_sum 1.5
        latency_seconds_count 3

        """

    static func policy() throws -> FilterPolicy {
        var policy = try FilterHarness.piiPolicy()
        policy.pii.labelRules.append(.init(name: "user", labelNames: ["user"], action: .hash))
        return policy
    }

    /// Every series part hashes alike: the index holds them all on one chain, and only
    /// their bytes tell them apart (`anm` and `ann` differ in one byte).
    @Test func seriesWhoseHashesCollideAreToldApartByTheirBytes() throws {
        let policy = try Self.policy()
        let fresh = Self.filter(Self.body, policy, memo: nil)
        let memo = SeriesMemo(budget: 1 << 20, hash: { _ in 42 })
        for pass in ["cold", "warm", "warm again"] {
            let remembered = Self.filter(Self.body, policy, memo: memo)
            #expect(remembered.0 == fresh.0, "\(pass)")
            #expect(remembered.1 == fresh.1, "\(pass)")
        }
        #expect(memo.statistics.misses == 11)
        #expect(memo.statistics.hits == 22)
        // The same lines in another order: the chain's predictions miss, the colliding
        // index finds each by its bytes.
        let lines = Self.body.split(separator: "\n").filter { $0.hasPrefix("requests_total") }
        let reordered = "# TYPE requests_total counter\n" + lines.reversed().joined(separator: "\n") + "\n"
        #expect(Self.filter(reordered, policy, memo: memo).0 == Self.filter(reordered, policy, memo: nil).0)
        #expect(memo.statistics.misses == 11)
    }

    /// A series part the memo knows with a value it has not seen: the value is read
    /// and checked anew, so a bad one is refused and a counter may not go negative.
    @Test func valuesAreCheckedOnEveryLine() throws {
        let memo = SeriesMemo(budget: 1 << 20)
        _ = Self.filter(Self.body, FilterPolicy(), memo: memo)
        let bad = Self.body.replacingFirst("requests_total{path=\"/a\",user=\"ann\"} 1", with: "requests_total{path=\"/a\",user=\"ann\"} one")
        let warm = Self.filter(bad, FilterPolicy(), memo: memo)
        #expect(warm.0 == Self.filter(bad, FilterPolicy(), memo: nil).0)
        #expect(!warm.0.contains("user=\"ann\"} one") && warm.1.linesRejected.values.reduce(0, +) == 1)

        let openMetrics = "# TYPE jobs counter\njobs_total{queue=\"a\"} 1\njobs_total{queue=\"b\"} 2\n# EOF\n"
        let om = SeriesMemo(budget: 1 << 20)
        _ = Self.filter(openMetrics, FilterPolicy(), format: .openMetrics, memo: om)
        let negative = openMetrics.replacingFirst("{queue=\"a\"} 1", with: "{queue=\"a\"} -1")
        let warmOM = Self.filter(negative, FilterPolicy(), format: .openMetrics, memo: om)
        #expect(warmOM == Self.filter(negative, FilterPolicy(), format: .openMetrics, memo: nil))
        #expect(warmOM.1.seriesDropped["counter_negative"] == 1)
        #expect(om.statistics.hits == 2)
    }

    /// Decisions are the policy's: a memo filled under one is forgotten under another.
    @Test func aChangedPolicyForgetsWhatTheOldOneDecided() throws {
        let drop = FilterPolicy(relabelRules: [try RelabelRule(.init(action: "drop", sourceLabels: ["user"], regex: "ann"))])
        let keep = FilterPolicy(relabelRules: [try RelabelRule(.init(action: "drop", sourceLabels: ["user"], regex: "bob"))])
        let memo = SeriesMemo(budget: 1 << 20)
        _ = Self.filter(Self.body, drop, memo: memo)
        let after = Self.filter(Self.body, keep, memo: memo)
        #expect(after == Self.filter(Self.body, keep, memo: nil))
        #expect(after.0.contains("user=\"ann\"") && !after.0.contains("user=\"bob\""))
        // The same for a new PII key: other pseudonyms.
        var rekeyed = try Self.policy()
        let first = Self.filter(Self.body, rekeyed, memo: memo)
        rekeyed.pii.hashKey = Array("another-key-0123456789abcdef".utf8)
        let second = Self.filter(Self.body, rekeyed, memo: memo)
        #expect(second == Self.filter(Self.body, rekeyed, memo: nil))
        #expect(first.0 != second.0)
        // And for another format or name escaping.
        _ = Self.filter(Self.body, keep, format: .openMetrics, memo: memo)
        #expect(Self.filter(Self.body, keep, memo: memo) == Self.filter(Self.body, keep, memo: nil))
    }

    /// A memo too small for a scrape remembers what fits and refuses the rest; when it
    /// was full, the next scrape first forgets the series the last one did not see,
    /// and the result never changes.
    @Test func aFullMemoForgetsTheSeriesTheLastScrapeDidNotSee() throws {
        let first = (0..<40).map { "old_series{n=\"\($0)\"} \($0)" }.joined(separator: "\n") + "\n"
        let second = (0..<40).map { "new_series{n=\"\($0)\"} \($0)" }.joined(separator: "\n") + "\n"
        let memo = SeriesMemo(budget: 7 << 10)
        _ = Self.filter(first, FilterPolicy(), memo: memo)
        let filled = memo.statistics
        #expect(filled.misses > 0 && filled.misses < 40 && filled.refused == 40 - filled.misses)
        #expect(memo.usedBytes <= 7 << 10)
        // Full: the new series are refused while the old ones hold it...
        #expect(Self.filter(second, FilterPolicy(), memo: memo) == Self.filter(second, FilterPolicy(), memo: nil))
        #expect(memo.statistics.misses == filled.misses && memo.statistics.hits == 0)
        // ... and the next scrape forgets the old ones, not seen last, to take them.
        #expect(Self.filter(second, FilterPolicy(), memo: memo) == Self.filter(second, FilterPolicy(), memo: nil))
        #expect(memo.statistics.misses == 2 * filled.misses)
        #expect(Self.filter(second, FilterPolicy(), memo: memo) == Self.filter(second, FilterPolicy(), memo: nil))
        #expect(memo.statistics.hits == filled.misses)
        #expect(memo.usedBytes <= 7 << 10)
    }

    /// A memo given back goes to the next scrape, with what it remembers; scrapes at
    /// once each get one, up to four, all within one budget.
    @Test func scrapesAtOnceShareTheStoresBudget() throws {
        let body = (0..<100).map { "series_with_a_longer_name{n=\"\($0)\"} \($0)" }.joined(separator: "\n") + "\n"
        let store = SeriesMemoStore(budget: 24 << 10)
        var lease = store.lease(format: .text, names: .unspecified)
        _ = Self.filter(body, FilterPolicy(), memo: try #require(lease).memo)
        let remembered = try #require(lease).memo.statistics.misses
        #expect(remembered == 100)
        lease = nil
        lease = store.lease(format: .text, names: .unspecified)
        let memo = try #require(lease).memo
        #expect(Self.filter(body, FilterPolicy(), memo: memo) == Self.filter(body, FilterPolicy(), memo: nil))
        #expect(memo.statistics.hits == remembered)

        var leases = [try #require(lease)] + (1..<SeriesMemoStore.maximumMemos).compactMap { _ in store.lease(format: .text, names: .unspecified) }
        lease = nil
        #expect(leases.count == SeriesMemoStore.maximumMemos)
        #expect(store.lease(format: .text, names: .unspecified) == nil)
        for lease in leases {
            #expect(Self.filter(body, FilterPolicy(), memo: lease.memo) == Self.filter(body, FilterPolicy(), memo: nil))
        }
        #expect(store.usedBytes <= 24 << 10)
        #expect(leases.dropFirst().map(\.memo.statistics.misses).reduce(0, +) < 100, "the others share what the first left")
        leases.removeAll()
        #expect(store.lease(format: .text, names: .unspecified) != nil)
        #expect(SeriesMemoStore(budget: 0).lease() == nil)
    }

    /// A line the full path keeps unchanged is remembered by its own bytes, but its
    /// labels are a label set's, where `s=""` is no label: a stateset sample without
    /// its state label is dropped warm as it is cold (the review's case).
    @Test func anEmptyLabelIsNoLabelWarmAsCold() throws {
        let policy = FilterPolicy(relabelRules: [try RelabelRule(.init(action: "drop", sourceLabels: ["env"], regex: "prod"))])
        let body = "# TYPE s stateset\ns{s=\"\"} 1\ns{s=\"a\",t=\"\"} 1\n# EOF\n"
        let fresh = Self.filter(body, policy, format: .openMetrics, memo: nil)
        #expect(fresh.1.seriesDropped["stateset_missing_label"] == 1, "\(fresh.1)")
        let memo = SeriesMemo(budget: 1 << 20)
        for _ in 0..<3 { #expect(Self.filter(body, policy, format: .openMetrics, memo: memo) == fresh) }
        #expect(memo.statistics.hits == 4)
    }

    /// Scrapers that ask differently get memos of their own: an OpenMetrics scraper's
    /// memo is not emptied by a text one's scrapes in between.
    @Test func scrapersThatAskDifferentlyKeepTheirOwnMemos() throws {
        let store = SeriesMemoStore(budget: 1 << 20)
        let openMetrics = Self.body.replacingOccurrences(of: "requests_total 6\n", with: "") + "# EOF\n"
        var lease = store.lease(format: .openMetrics, names: .unspecified)
        _ = Self.filter(openMetrics, FilterPolicy(), format: .openMetrics, memo: try #require(lease).memo)
        let first = try #require(lease).memo
        lease = nil
        lease = store.lease(format: .text, names: .unspecified)
        #expect(try #require(lease).memo !== first)
        _ = Self.filter(Self.body, FilterPolicy(), memo: try #require(lease).memo)
        lease = nil
        lease = store.lease(format: .openMetrics, names: .unspecified)
        #expect(try #require(lease).memo === first)
        let before = first.statistics.hits
        _ = Self.filter(openMetrics, FilterPolicy(), format: .openMetrics, memo: first)
        #expect(first.statistics.hits > before)
    }

    /// A budget of 0 is no memo at all.
    /// A remembered line's unit depends on the metadata before it (`foo_count` is its
    /// own unit alone, part of `foo` under `# TYPE foo summary`): admission through the
    /// memo, with what it keeps of each unit, decides every scrape as admission
    /// without a memo does, over the same scrapes with their own tracker.
    @Test func admissionThroughTheMemoFollowsTheMetadata() {
        for limits in [SeriesLimits(sampleLimit: 1), SeriesLimits(seriesPerMetric: 1), SeriesLimits(seriesPerMetric: 2)] {
            var policy = FilterPolicy()
            policy.limits = limits
            let (remembering, fresh) = (SeriesTracker(limits: limits), SeriesTracker(limits: limits))
            let memo = SeriesMemo(budget: 1 << 20)
            let bodies = ["foo_count 1\n", "# TYPE foo summary\nfoo_count 1\n", "foo_count 1\n",
                          "# TYPE foo summary\nfoo_count 1\n", "foo_count 1\n"]
            for (scrape, body) in bodies.enumerated() {
                let warm = FilterHarness.filterOnce(body, policy, format: .text, tracker: remembering, chunk: nil, memo: memo)
                let cold = FilterHarness.filterOnce(body, policy, format: .text, tracker: fresh, chunk: nil)
                #expect(warm.0 == cold.0 && warm.1 == cold.1, "\(limits), scrape \(scrape + 1): \(warm) vs \(cold)")
            }
            #expect(remembering.admittedPerFamily == fresh.admittedPerFamily)
        }
    }

    @Test func aZeroBudgetRemembersNothing() {
        let memo = SeriesMemo(budget: 0)
        #expect(Self.filter(Self.body, FilterPolicy(), memo: memo) == Self.filter(Self.body, FilterPolicy(), memo: nil))
        #expect(memo.statistics == SeriesMemo.Statistics())
        #expect(memo.usedBytes == 0)
    }
}

private extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
