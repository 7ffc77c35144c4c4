import Foundation
import Synchronization
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

    /// A memo given back goes to the next scrape, with what it remembers; while one
    /// scrape fills it, another that asks alike goes without one (two memos filled at
    /// once would split the budget). Scrapers that ask differently get memos of their
    /// own, up to four at once, all within one budget.
    @Test func scrapesAtOnceShareTheStoresBudget() throws {
        let body = (0..<100).map { "series_with_a_longer_name{n=\"\($0)\"} \($0)" }.joined(separator: "\n") + "\n"
        let policy = FilterPolicy()
        let store = SeriesMemoStore(budget: 24 << 10)
        var lease = store.lease(policy: policy, format: .text, names: .unspecified)
        #expect(lease?.sharing == false)
        #expect(store.lease(policy: policy, format: .text, names: .unspecified) == nil, "its memo is being filled")
        _ = Self.filter(body, policy, memo: try #require(lease).memo)
        let remembered = try #require(lease).memo.statistics.misses
        #expect(remembered == 100)
        lease = nil
        lease = store.lease(policy: policy, format: .text, names: .unspecified)
        let memo = try #require(lease).memo
        #expect(FilterHarness.filterOnce(body, policy, format: .text, tracker: nil, chunk: nil, memo: memo,
                                         sharingMemo: try #require(lease).sharing)
                == Self.filter(body, policy, memo: nil))
        #expect(memo.statistics.misses == remembered)

        let askings: [(ExpositionFormat, NameEscaping)] = [(.openMetrics, .unspecified), (.text, .allowUTF8), (.openMetrics, .dots)]
        var leases = askings.compactMap { store.lease(policy: policy, format: $0.0, names: $0.1) }
        #expect(leases.count == SeriesMemoStore.maximumMemos - 1)
        let fifth = store.lease(policy: policy, format: .text, names: .values)
        #expect(fifth == nil, "four memos at most")
        let openMetricsBody = body + "# EOF\n"
        for (lease, asking) in zip(leases, askings) {
            let input = asking.0 == .openMetrics ? openMetricsBody : body
            let expected = FilterHarness.filterOnce(input, policy, format: asking.0, names: asking.1, tracker: nil, chunk: nil)
            #expect(FilterHarness.filterOnce(input, policy, format: asking.0, names: asking.1, tracker: nil, chunk: nil,
                                             memo: lease.memo) == expected)
        }
        #expect(store.usedBytes <= 24 << 10)
        #expect(leases.allSatisfy { $0.memo.statistics.misses < remembered }, "the others share what the first left")
        leases.removeAll()
        lease = nil
        #expect(store.lease(policy: policy, format: .text, names: .values) != nil)
        #expect(SeriesMemoStore(budget: 0).lease(policy: policy) == nil)
    }

    /// A memo whose last scrape alone found every line is read by scrapes at once,
    /// together: they get the same memo, change nothing in it and give what filtering
    /// in full gives. A line one of them misses keeps further scrapes from joining;
    /// once they are done, the next scrape has the memo alone and remembers it. Under
    /// another policy the memo is not shared.
    @Test func scrapesAtOnceShareASettledMemo() throws {
        let body = (0..<50).map { "shared_series{n=\"\($0)\"} \($0)" }.joined(separator: "\n") + "\n"
        let policy = FilterPolicy()
        let store = SeriesMemoStore(budget: 1 << 20)
        do {  // filled, and refused nothing: settled
            let lease = try #require(store.lease(policy: policy, format: .text, names: .unspecified))
            #expect(!lease.sharing)
            _ = Self.filter(body, policy, memo: lease.memo)
        }
        var leases = (0..<6).compactMap { _ in store.lease(policy: policy, format: .text, names: .unspecified) }
        let memo = try #require(leases.first).memo
        #expect(leases.count == 6 && leases.allSatisfy { $0.sharing && $0.memo === memo })
        #expect(memo.numberedSeries == 50, "numbered as the scrape that filled it ended: those that share it check by number")
        let (state, statistics) = (memo.stateFingerprint, memo.statistics)
        let more = body + "shared_series{n=\"new\"} 1\n"
        for lease in leases {
            let shared = FilterHarness.filterOnce(more, policy, format: .text, tracker: nil, chunk: nil, memo: lease.memo,
                                                  sharingMemo: lease.sharing)
            #expect(shared == Self.filter(more, policy, memo: nil))
        }
        #expect(memo.stateFingerprint == state && memo.statistics == statistics)
        #expect(store.lease(policy: policy, format: .text, names: .unspecified) == nil,
                "a memo that fell behind is joined by no more scrapes; none is filled beside it")
        leases.removeAll()
        var alone = store.lease(policy: policy, format: .text, names: .unspecified)
        #expect(alone?.memo === memo && alone?.sharing == false)
        _ = Self.filter(more, policy, memo: try #require(alone).memo)
        #expect(memo.statistics.misses == statistics.misses + 1 && memo.statistics.hits == statistics.hits + 50)
        #expect(memo.numberedSeries == 51)
        alone = nil
        #expect(store.lease(policy: policy, format: .text, names: .unspecified)?.sharing == true,
                "the line remembered, the memo is shared again")
        let other = try Self.policy()
        let underOther = try #require(store.lease(policy: other, format: .text, names: .unspecified))
        #expect(underOther.memo === memo && !underOther.sharing)
    }

    /// Scrapes that share a memo run on threads of their own at once: each gives what
    /// filtering in full gives, and the memo is left as it was. Half of them meet
    /// series the memo does not hold (the misses, the flag and the drafts stopped after
    /// it run on threads at once too): the memo is flagged, and no longer settled once
    /// the sharing ends.
    @Test func scrapesSharingAMemoOnThreadsAtOnceGiveTheFreshResult() throws {
        let policy = try Self.policy()
        let lines = (0..<2000).map { "requests_total{path=\"/p\($0 % 7)\",user=\"u\($0)\"} \($0)" }
        let body = lines.joined(separator: "\n") + "\n"
        var random = SplitMix64(seed: 9)
        let more = (lines + (0..<20).map { "requests_total{path=\"/new\",user=\"n\($0)@example.com\"} \($0)" })
            .shuffled(using: &random).joined(separator: "\n") + "\n"
        let fresh = [Self.filter(body, policy, memo: nil), Self.filter(more, policy, memo: nil)]
        let memo = SeriesMemo(budget: 4 << 20)
        _ = Self.filter(body, policy, memo: memo)
        #expect(memo.isSettled(for: policy))
        let state = memo.stateFingerprint
        // A slot per run, each written by its own thread: no lock between the runs for
        // TSan to take as the memo's synchronization (`Mutex` is a futex it does not see).
        let results = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 40)
        defer { results.deallocate() }
        results.initialize(repeating: false)
        let slots = UncheckedSendable(results)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            let input = thread % 2 == 0 ? body : more
            for run in 0..<5 {
                let shared = FilterHarness.filterOnce(input, policy, format: .text, tracker: nil, chunk: 4096, memo: memo,
                                                      sharingMemo: true)
                slots.value[thread * 5 + run] = shared == fresh[thread % 2]
            }
        }
        #expect(Array(results) == Array(repeating: true, count: 40))
        #expect(memo.stateFingerprint == state)
        #expect(!memo.isSettled(for: policy), "flagged: no more scrapes join")
        memo.endSharing()
        #expect(!memo.isSettled(for: policy) && !memo.missedWhileShared.load(ordering: .relaxed))
    }

    /// A memo taken over for a fifth way of asking is filled anew, never shared: what
    /// it holds was decided for another format or escaping (the review's case).
    @Test func aMemoTakenOverForAnotherWayOfAskingIsNotShared() throws {
        let body = "a{x=\"1\"} 1\n"
        let policy = FilterPolicy()
        let store = SeriesMemoStore(budget: 1 << 20)
        let askings: [NameEscaping] = [.underscores, .allowUTF8, .dots, .values]
        for names in askings {  // four memos, each filled, refused nothing: settled
            let lease = try #require(store.lease(policy: policy, format: .text, names: names))
            _ = FilterHarness.filterOnce(body, policy, format: .text, names: names, tracker: nil, chunk: nil, memo: lease.memo)
        }
        #expect(store.lease(policy: policy, format: .text, names: .dots)?.sharing == true)
        let lease = try #require(store.lease(policy: policy, format: .openMetrics, names: .underscores))
        #expect(!lease.sharing)
        let openMetrics = body + "# EOF\n"
        #expect(FilterHarness.filterOnce(openMetrics, policy, format: .openMetrics, tracker: nil, chunk: nil, memo: lease.memo)
                == FilterHarness.filterOnce(openMetrics, policy, format: .openMetrics, tracker: nil, chunk: nil))
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
        var lease = store.lease(policy: FilterPolicy(), format: .openMetrics, names: .unspecified)
        _ = Self.filter(openMetrics, FilterPolicy(), format: .openMetrics, memo: try #require(lease).memo)
        let first = try #require(lease).memo
        lease = nil
        lease = store.lease(policy: FilterPolicy(), format: .text, names: .unspecified)
        #expect(try #require(lease).memo !== first)
        _ = Self.filter(Self.body, FilterPolicy(), memo: try #require(lease).memo)
        lease = nil
        lease = store.lease(policy: FilterPolicy(), format: .openMetrics, names: .unspecified)
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

    /// A label drop makes metrics one series: each body after another, through a memo
    /// whose series are numbered (the second scrape numbers them), shared, warm, shared
    /// again (the warm pass remembered lines it did not number: replayed, they are
    /// checked by fingerprint) and warm again, writes each series once as a fresh
    /// filter does, whether the duplicate check meets it by its number (replayed) or by
    /// its fingerprint (filtered in full, or remembered after the numbering).
    @Test func aSeriesMetTwiceIsWrittenOnceWhicheverWayEachIsChecked() throws {
        let policy = FilterPolicy(relabelRules: [try RelabelRule(.init(action: "labeldrop", regex: "code"))])
        let a = "requests_total{path=\"/a\"} 1"
        let a200 = "requests_total{path=\"/a\",code=\"200\"} 2"
        let a500 = "requests_total{code=\"500\",path=\"/a\"} 3"
        let b = "requests_total{path=\"/b\"} 4"
        func body(_ lines: [String]) -> String {
            "# TYPE requests_total counter\n" + lines.map { $0 + "\n" }.joined()
        }
        let bodies = [[a, b], [a, a200, b], [a200, a, b], [b, a200], [a200, b, a, a500], [a500, a200]].map(body)
        for earlier in bodies {
            for now in bodies {
                let fresh = Self.filter(now, policy, memo: nil)
                let memo = SeriesMemo(budget: 1 << 20)
                for _ in 0..<3 { _ = Self.filter(earlier, policy, memo: memo) }
                #expect(memo.numberedSeries > 0)
                let shared = FilterHarness.filterOnce(now, policy, format: .text, tracker: nil, chunk: nil, memo: memo,
                                                      sharingMemo: true)
                let warm = Self.filter(now, policy, memo: memo)
                let sharedAgain = FilterHarness.filterOnce(now, policy, format: .text, tracker: nil, chunk: nil,
                                                           memo: memo, sharingMemo: true)
                let again = Self.filter(now, policy, memo: memo)
                for (pass, result) in [("shared", shared), ("warm", warm), ("shared again", sharedAgain),
                                       ("warm again", again)] {
                    #expect(result.0 == fresh.0, "\(pass)")
                    #expect(result.1 == fresh.1, "\(pass): \(result.1) vs \(fresh.1)")
                }
            }
        }
        #expect(Self.filter(body([a200, b, a, a500]), policy, memo: nil).1.seriesDropped == ["duplicate": 2])
    }

    /// A memo too small for the scrape forgets the series the last scrape did not see
    /// and moves the rest down: the numbers are made again even when as many entries
    /// are left as were numbered, or a duplicate would pass (the first sequence) or a
    /// series be dropped as one (the second). Each scrape gives the fresh result.
    @Test func aFullMemoThatForgetsStillFindsEveryDuplicate() throws {
        let policy = FilterPolicy(relabelRules: [try RelabelRule(.init(action: "labeldrop", regex: "code"))])
        func line(_ path: String, code: String? = nil) -> String {
            "requests_total{path=\"\(path)\"" + (code.map { ",code=\"\($0)\"" } ?? "") + "} 1"
        }
        // Never fits the memo: every scrape with it finds the memo full.
        let big = line("/" + String(repeating: "x", count: 6000))
        let sequences = [
            [[line("/p"), line("/q"), line("/r")]]
                + Array(repeating: [line("/r"), line("/a", code: "200"), line("/a", code: "500"), big], count: 3),
            [[line("/a", code: "200"), line("/a", code: "500")]]
                + Array(repeating: [line("/b"), line("/c"), big], count: 3),
        ]
        for (number, sequence) in sequences.enumerated() {
            let memo = SeriesMemo(budget: 8 << 10)
            for (scrape, lines) in sequence.enumerated() {
                let input = "# TYPE requests_total counter\n" + lines.map { $0 + "\n" }.joined()
                let fresh = Self.filter(input, policy, memo: nil)
                let warm = Self.filter(input, policy, memo: memo)
                #expect(warm.0 == fresh.0, "sequence \(number), scrape \(scrape)")
                #expect(warm.1 == fresh.1, "sequence \(number), scrape \(scrape): \(warm.1) vs \(fresh.1)")
            }
            #expect(memo.statistics.refused > 0, "the memo was full")
        }
    }

    /// A text memo numbers its series too, in its budget, once for the same entries.
    @Test func aTextMemoNumbersItsSeriesWithinItsBudget() {
        let body = (0..<200).map { "requests_total{path=\"/\($0)\"} 1\n" }.joined()
        let budget = MemoBudget(limit: 1 << 20)
        do {
            let memo = SeriesMemo(sharing: budget)
            _ = Self.filter(body, FilterPolicy(), memo: memo)
            #expect(memo.numberedSeries == 200, "numbered as the scrape that filled it ends")
            #expect(memo.usedBytes == memo.entryBytes + SeriesNumbers.bytes(for: 200), "the numbers are counted")
            _ = Self.filter(body, FilterPolicy(), memo: memo)
            #expect(memo.numberedSeries == 200)
            #expect(budget.usedBytes == memo.usedBytes && memo.usedBytes <= memo.budget)
            let held = memo.usedBytes
            _ = Self.filter(body, FilterPolicy(), memo: memo)
            #expect(memo.usedBytes == held, "the same entries: numbered once")
        }
        #expect(budget.usedBytes == 0)
    }

    /// Numbers made for the entries a memo had stay valid for them while entries are
    /// added: when the numbers for all of them do not fit the budget, the old ones are
    /// kept, not dropped for none.
    @Test func numbersThatNoLongerFitAreKeptForTheEntriesTheyNumber() {
        let first = (0..<200).map { "requests_total{path=\"/\($0)\"} 1\n" }.joined()
        let more = first + (200..<250).map { "requests_total{path=\"/\($0)\"} 1\n" }.joined()
        let roomy = SeriesMemo(budget: 1 << 20)
        _ = Self.filter(more, FilterPolicy(), memo: roomy)
        // Room for every entry and the 200 series' numbers, not for 250 series' numbers.
        let budget = roomy.entryBytes + SeriesNumbers.bytes(for: 200) + 100
        #expect(budget < roomy.entryBytes + SeriesNumbers.bytes(for: 250))
        let memo = SeriesMemo(budget: budget)
        _ = Self.filter(first, FilterPolicy(), memo: memo)
        #expect(memo.numberedSeries == 200)
        #expect(Self.filter(more, FilterPolicy(), memo: memo) == Self.filter(more, FilterPolicy(), memo: nil))
        #expect(memo.entryBytes == roomy.entryBytes, "every entry remembered")
        #expect(memo.numberedSeries == 200, "the old numbers kept")
        #expect(Self.filter(more, FilterPolicy(), memo: memo) == Self.filter(more, FilterPolicy(), memo: nil))
        #expect(memo.usedBytes <= memo.budget)
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

/// A value handed to threads that each touch a part of it only.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
