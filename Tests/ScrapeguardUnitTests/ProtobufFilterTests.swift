@testable import MetricsFilter
import TestSupport
import Testing

/// The protobuf exposition through the filter, on messages built by hand from
/// client_model's field numbers (`ProtoBuilder`), every case at every chunk size.
@Suite struct ProtobufFilterTests {
    typealias P = ProtoBuilder

    /// Runs `input` through a `ProtobufFilter` in one chunk, then at every chunk size
    /// (up to 600 bytes of input): every split must give the same bytes and report; and
    /// cold, warm and warm again through a series memo, and through one too small for
    /// it: the same again.
    static func run(_ input: [UInt8], _ policy: FilterPolicy = FilterPolicy(), names: NameEscaping = .allowUTF8)
        -> ([UInt8], FilterReport) {
        func once(_ size: Int, memo: SeriesMemo? = nil) -> ([UInt8], FilterReport) {
            let filter = ProtobufFilter(policy: policy, names: names, memo: memo)
            var output: [UInt8] = []
            var start = 0
            while start < input.count {
                filter.process(Array(input[start..<min(start + size, input.count)]), into: &output)
                start += size
            }
            return (output, filter.finish(into: &output))
        }
        let whole = once(max(input.count, 1))
        if input.count <= 600 {
            for size in 1..<max(input.count, 1) {
                let split = once(size)
                if split.0 != whole.0 || split.1 != whole.1 {
                    Issue.record("chunks of \(size) bytes changed the result")
                    break
                }
            }
        }
        for budget in [1 << 20, 1200] {
            let memo = SeriesMemo(budget: budget)
            for pass in ["cold", "warm", "warm again"] {
                let remembered = once(max(input.count, 1), memo: memo)
                if remembered.0 != whole.0 || remembered.1 != whole.1 {
                    Issue.record("the \(pass) pass through a memo of \(budget) bytes changed the result: \(remembered.1) vs \(whole.1)")
                    return whole
                }
            }
        }
        return whole
    }

    /// `input` through one filter, with `memo` when given (only read when `sharing`).
    static func filtered(_ input: [UInt8], _ policy: FilterPolicy, memo: SeriesMemo?,
                         sharing: Bool = false) -> ([UInt8], FilterReport) {
        let filter = ProtobufFilter(policy: policy, names: .allowUTF8, memo: memo, sharingMemo: sharing)
        var output: [UInt8] = []
        filter.process(input, into: &output)
        return (output, filter.finish(into: &output))
    }

    static let histogramWithBucket = P.field(7, P.varintField(1, 3) + P.doubleField(2, 1.5)
        + P.field(3, P.varintField(1, 3) + P.doubleField(2, 1)))
    static let histogramWithoutBucket = P.field(7, P.varintField(1, 3) + P.doubleField(2, 1.5))

    /// The memo knows the metric it predicts by the label fields' bytes at its start,
    /// and reads only the fields after them. After two scrapes that remembered
    /// `remembered` (in a family of `type`), `variant` comes where it came (in a family
    /// of `variantType`), and must be filtered as a fresh filter filters it, warm and
    /// through the memo shared, under policies that keep, rewrite, drop and scrub:
    /// the same labels after the value, one label more after the value, a value of
    /// the wrong wire type or cut short after the labels, a label set that starts
    /// with the same bytes, no labels, another family type, a histogram that lost its
    /// bucket (decided again in full), an exemplar to scrub on unchanged labels.
    @Test(arguments: [
        (P.metric([("path", "/a")], P.counter(1)), 0, P.counter(1) + P.field(1, P.labelPair("path", "/a")), 0),
        (P.metric([("path", "/a")], P.counter(1)), 0,
         P.metric([("path", "/a")], P.counter(1) + P.field(1, P.labelPair("code", "500"))), 0),
        (P.metric([("path", "/a")], P.counter(1)), 0, P.metric([("path", "/a")], P.varintField(3, 1)), 0),
        (P.metric([("path", "/a")], P.counter(1)), 0, P.metric([("path", "/a")], [0x1A, 0x09, 0x09]), 0),
        (P.metric([("path", "/a")], P.counter(1)), 0, P.metric([("path", "/a"), ("code", "200")], P.counter(1)), 0),
        (P.metric([("path", "/a")], P.counter(1)), 0, P.metric([("path", "/a")], P.counter(5)), 0),
        (P.metric([], P.counter(1)), 0, P.metric([], P.counter(2)), 0),
        (P.metric([], P.counter(1)), 0, P.counter(2) + P.field(1, P.labelPair("path", "/a")), 0),
        (P.metric([("path", "/a")], P.counter(1)), 0, P.metric([("path", "/a")], P.gauge(1)), 1),
        (P.metric([("path", "/a")], Self.histogramWithBucket), 4, P.metric([("path", "/a")], Self.histogramWithoutBucket), 4),
        (P.metric([("path", "/a")], P.counter(1)), 0,
         P.metric([("path", "/a")], P.counter(1, exemplar: P.exemplar([("user_id", "42")], 1))), 0),
    ] as [([UInt8], UInt64, [UInt8], UInt64)])
    func thePredictedMetricIsKnownByItsLabelBytes(_ remembered: [UInt8], _ type: UInt64, _ variant: [UInt8],
                                                  _ variantType: UInt64) throws {
        let other = P.metric([("path", "/b")], P.counter(2))
        let first = P.delimited([P.family("requests_total", type: type, metrics: [remembered, other])])
        let body = P.delimited([P.family("requests_total", type: variantType, metrics: [variant, other])])
        let rewrite = try RelabelRule(.init(action: "replace", sourceLabels: ["path"], targetLabel: "route",
                                            regex: "/(.*)", replacement: "$1"))
        let drop = try RelabelRule(.init(action: "drop", sourceLabels: ["path"], regex: "/a"))
        var scrub = FilterPolicy()
        scrub.pii = PIIPolicy(labelRules: [.init(name: "user", labelNames: ["user_id"], action: .drop)])
        for policy in [FilterPolicy(), FilterPolicy(relabelRules: [rewrite]), FilterPolicy(relabelRules: [drop]), scrub] {
            let fresh = Self.filtered(body, policy, memo: nil)
            let memo = SeriesMemo(budget: 1 << 20)
            for _ in 0..<2 { _ = Self.filtered(first, policy, memo: memo) }
            // Read only first (the memo is as the two scrapes left it), then as its own.
            let shared = Self.filtered(body, policy, memo: memo, sharing: true)
            let warm = Self.filtered(body, policy, memo: memo)
            for (pass, result) in [("shared", shared), ("warm", warm)] {
                #expect(result.0 == fresh.0, "\(pass), \(policy.relabelRules.count) rules")
                #expect(result.1 == fresh.1, "\(pass): \(result.1) vs \(fresh.1)")
            }
            #expect(Self.filtered(first, policy, memo: memo) == Self.filtered(first, policy, memo: nil))
        }
    }

    /// Two metrics the rules make one series are written once, whichever way each is
    /// checked (a remembered metric by its series' number, one filtered in full or
    /// remembered after the numbering by its fingerprint), in any order, warm, shared
    /// and fresh alike.
    @Test func aSeriesMetTwiceIsWrittenOnceWhicheverWayEachIsChecked() throws {
        let policy = FilterPolicy(relabelRules: [try RelabelRule(.init(action: "labeldrop", regex: "code"))])
        let a = P.metric([("path", "/a")], P.counter(1))
        let a200 = P.metric([("path", "/a"), ("code", "200")], P.counter(2))
        let a500 = P.metric([("path", "/a"), ("code", "500")], P.counter(3))
        let b = P.metric([("path", "/b")], P.counter(4))
        func body(_ metrics: [[UInt8]]) -> [UInt8] {
            P.delimited([P.family("requests_total", type: 0, metrics: metrics)])
        }
        let bodies = [[a, b], [a, a200, b], [a200, a, b], [b, a200], [a200, b, a, a500], [a500, a200]].map(body)
        for earlier in bodies {
            for now in bodies {
                let fresh = Self.filtered(now, policy, memo: nil)
                let memo = SeriesMemo(budget: 1 << 20)
                // The second scrape numbers what the first remembered; the third adds.
                for _ in 0..<3 { _ = Self.filtered(earlier, policy, memo: memo) }
                let shared = Self.filtered(now, policy, memo: memo, sharing: true)
                let warm = Self.filtered(now, policy, memo: memo)
                let again = Self.filtered(now, policy, memo: memo)
                for (pass, result) in [("shared", shared), ("warm", warm), ("warm again", again)] {
                    #expect(result.0 == fresh.0, "\(pass)")
                    #expect(result.1 == fresh.1, "\(pass): \(result.1) vs \(fresh.1)")
                }
            }
        }
        let both = Self.filtered(body([a200, b, a, a500]), policy, memo: nil)
        #expect(both.1.seriesDropped == ["duplicate": 2])
    }

    /// A memo too small for the scrape forgets the series the last scrape did not see
    /// and moves the rest down: the series' numbers must be made again even when as
    /// many entries are left as were numbered, or a duplicate would pass (the first
    /// sequence) or a series be dropped as one (the second). Each scrape through the
    /// memo must give the fresh filter's result.
    @Test func aFullMemoThatForgetsStillFindsEveryDuplicate() throws {
        let policy = FilterPolicy(relabelRules: [try RelabelRule(.init(action: "labeldrop", regex: "code"))])
        func metric(_ path: String, code: String? = nil) -> [UInt8] {
            P.metric([("path", path)] + (code.map { [("code", $0)] } ?? []), P.counter(1))
        }
        // Never fits the memo: every scrape with it finds the memo full.
        let big = metric("/" + String(repeating: "x", count: 6000))
        let sequences = [
            [[metric("/p"), metric("/q"), metric("/r")]]
                + Array(repeating: [metric("/r"), metric("/a", code: "200"), metric("/a", code: "500"), big], count: 3),
            [[metric("/a", code: "200"), metric("/a", code: "500")]]
                + Array(repeating: [metric("/b"), metric("/c"), big], count: 3),
        ]
        for (number, sequence) in sequences.enumerated() {
            let memo = SeriesMemo(budget: 8 << 10)
            for (scrape, metrics) in sequence.enumerated() {
                let input = P.delimited([P.family("requests_total", type: 0, metrics: metrics)])
                let fresh = Self.filtered(input, policy, memo: nil)
                let warm = Self.filtered(input, policy, memo: memo)
                #expect(warm.0 == fresh.0, "sequence \(number), scrape \(scrape)")
                #expect(warm.1 == fresh.1, "sequence \(number), scrape \(scrape): \(warm.1) vs \(fresh.1)")
            }
            #expect(memo.statistics.refused > 0, "the memo was full")
        }
    }

    /// The series' numbers count in the memo's budget, are made again when the
    /// entries change (and not while they do not), go with everything the memo
    /// forgets, and are not made where the budget has no room for them.
    @Test func seriesNumbersCountInTheBudget() {
        let body = P.delimited([P.family("requests_total", type: 0, metrics: (0..<200).map {
            P.metric([("path", "/\($0)")], P.counter(1))
        })])
        let budget = MemoBudget(limit: 1 << 20)
        do {
            let memo = SeriesMemo(sharing: budget)
            _ = Self.filtered(body, FilterPolicy(), memo: memo)
            #expect(memo.numberedSeries == 200, "numbered as the scrape that filled it ends")
            #expect(memo.usedBytes == memo.entryBytes + SeriesNumbers.bytes(for: 200))
            _ = Self.filtered(body, FilterPolicy(), memo: memo)
            #expect(memo.numberedSeries == 200)
            #expect(budget.usedBytes == memo.usedBytes && memo.usedBytes <= memo.budget)
            let held = memo.usedBytes
            _ = Self.filtered(body, FilterPolicy(), memo: memo)
            #expect(memo.usedBytes == held, "the same entries: numbered once")
            var limited = FilterPolicy()
            limited.limits.sampleLimit = 1000
            // Another policy: the entries and their numbers forgotten, the new entries
            // numbered.
            _ = Self.filtered(body, limited, memo: memo)
            #expect(memo.numberedSeries == 200 && memo.usedBytes == held && budget.usedBytes == memo.usedBytes)
        }
        #expect(budget.usedBytes == 0)
        // A budget the entries fill leaves no room for numbers: none, and the check is
        // by fingerprint, with the same result.
        let roomy = SeriesMemo(budget: 1 << 20)
        _ = Self.filtered(body, FilterPolicy(), memo: roomy)
        let tight = SeriesMemo(budget: roomy.entryBytes + 16)
        for _ in 0..<3 {
            #expect(Self.filtered(body, FilterPolicy(), memo: tight) == Self.filtered(body, FilterPolicy(), memo: nil))
        }
        #expect(tight.numberedSeries == 0 && tight.usedBytes <= tight.budget)
    }

    /// A remembered metric's drops of one metric and reason are counted together, as
    /// a fresh filter counts them.
    @Test func dropsOfRememberedMetricsAreCountedAsFresh() throws {
        let drop = try RelabelRule(.init(action: "drop", sourceLabels: ["path"], regex: "/[ab]"))
        let policy = FilterPolicy(relabelRules: [drop])
        let body = P.delimited([
            P.family("requests_total", type: 0, metrics: ["/a", "/b", "/c"].map { P.metric([("path", $0)], P.counter(1)) }),
            P.family("errors_total", type: 0, metrics: ["/a", "/c"].map { P.metric([("path", $0)], P.counter(1)) }),
        ])
        let fresh = Self.filtered(body, policy, memo: nil)
        #expect(fresh.1.seriesDropped == ["relabel": 3])
        #expect(fresh.1.seriesDroppedByMetric == [
            FilterReport.DroppedKey(reason: "relabel", metric: "requests_total"): 2,
            FilterReport.DroppedKey(reason: "relabel", metric: "errors_total"): 1,
        ])
        let memo = SeriesMemo(budget: 1 << 20)
        for _ in 0..<3 { #expect(Self.filtered(body, policy, memo: memo) == fresh) }
    }

    /// A counter with an unknown field (99) on the metric and on the family, a gauge.
    static let counterMetric = P.metric([("path", "/a"), ("user_id", "42")],
                                        P.counter(7, exemplar: P.exemplar([("trace_id", "t1"), ("user_id", "42")], 1))
                                            + P.field(99, "future"))
    static let body = P.delimited([
        P.family("http_requests_total", type: 0, help: "Requests.", metrics: [counterMetric], extra: P.field(99, "x")),
        P.family("queue_depth", type: 1, metrics: [P.metric([("queue", "a")], P.gauge(3))]),
    ])

    @Test func theIdentityPolicyPassesEveryByte() {
        let (output, report) = Self.run(Self.body)
        #expect(output == Self.body)
        #expect(report.samplesIn == 2 && report.samplesOut == 2 && report.samplesRewritten == 0)
    }

    /// A PII rule drops a label: the metric is written anew with the other labels,
    /// and every other field (the counter's value, created timestamp, unknown field
    /// 99) byte for byte; the exemplar's `user_id` goes too. The gauge's family is
    /// untouched.
    @Test func aDroppedLabelRewritesOnlyTheLabels() {
        var policy = FilterPolicy()
        policy.pii = PIIPolicy(labelRules: [.init(name: "user", labelNames: ["user_id"], action: .drop)])
        let (output, report) = Self.run(Self.body, policy)
        let expectedMetric = P.metric([("path", "/a")],
                                      P.counter(7, exemplar: P.exemplar([("trace_id", "t1")], 1)) + P.field(99, "future"))
        #expect(output == P.delimited([
            P.family("http_requests_total", type: 0, help: "Requests.", metrics: [expectedMetric], extra: P.field(99, "x")),
            P.family("queue_depth", type: 1, metrics: [P.metric([("queue", "a")], P.gauge(3))]),
        ]))
        #expect(report.samplesOut == 2 && report.samplesRewritten == 1)
        #expect(report.piiActions[FilterReport.PIIKey(rule: "user", action: "drop")] == 2, "the label and the exemplar's")
    }

    /// Two metrics that differ only in a dropped label become one series: the second
    /// is dropped as a duplicate, as on the text path.
    @Test func metricsThatCollapseAreWrittenOnce() {
        var policy = FilterPolicy()
        policy.pii = PIIPolicy(labelRules: [.init(name: "user", labelNames: ["user_id"], action: .drop)])
        let input = P.delimited([P.family("logins_total", type: 0, metrics: [
            P.metric([("user_id", "1")], P.counter(1)), P.metric([("user_id", "2")], P.counter(2)),
        ])])
        let (output, report) = Self.run(input, policy)
        #expect(output == P.delimited([P.family("logins_total", type: 0, metrics: [P.metric([], P.counter(1))])]))
        #expect(report.seriesDropped == ["duplicate": 1])
    }

    /// A rule that drops a family's every metric drops the family; one that renames
    /// moves the metric to a family of the new name, with the same help and type.
    @Test func relabelingDropsAndMovesMetrics() throws {
        let drop = try RelabelRule(.init(action: "drop", sourceLabels: ["__name__"], regex: "queue_.*"))
        let rename = try RelabelRule(.init(action: "replace", sourceLabels: ["__name__"], targetLabel: "__name__",
                                           regex: "http_(.*)", replacement: "web_$1"))
        let (output, report) = Self.run(Self.body, FilterPolicy(relabelRules: [drop, rename]))
        #expect(output == P.delimited([
            // The original family, its metric gone, is not written; the moved one is.
            P.family("web_requests_total", type: 0, help: "Requests.", metrics: [
                P.metric([("path", "/a"), ("user_id", "42")],
                         P.counter(7, exemplar: P.exemplar([("trace_id", "t1"), ("user_id", "42")], 1)) + P.field(99, "future")),
            ]),
        ]))
        #expect(report.seriesDropped == ["relabel": 1])
    }

    /// A family over the bound is skipped without being held, counted, and the next
    /// family still passes; a body cut inside a family is counted and fails the
    /// scrape under `fail_scrape`.
    @Test func oversizedAndTruncatedFamiliesAreRefused() {
        let big = P.family("big", type: 1, metrics: (0..<50).map { P.metric([("i", "\($0)")], P.gauge(1)) })
        let small = P.family("small", type: 1, metrics: [P.metric([], P.gauge(2))])
        var policy = FilterPolicy()
        policy.maximumFamilyLength = 200
        let (output, report) = Self.run(P.delimited([big, small]), policy)
        #expect(big.count > 200)
        #expect(output == P.delimited([small]))
        #expect(report.linesRejected == ["family_too_large": 1])
        policy.invalidLines = .failScrape
        let cut = Array(P.delimited([small, small]).dropLast(3))
        let (truncated, failed) = Self.run(cut, policy)
        #expect(truncated == P.delimited([small]))
        #expect(failed.linesRejected == ["truncated_message": 1] && failed.failed)
    }

    /// Bytes that are not a metric, or not client_model's `Metric`: the metric (or
    /// family) is dropped and counted under the decoder's words, the rest goes on.
    @Test(arguments: [
        (P.varint(7 << 3 | 7), "unsupported_wire_type"),
        (P.field(1, [0x0A, 0x05, 0x61]), "truncated_field"),
        (P.field(1, P.field(1, [0xFF, 0xFE]) + P.field(2, "v")), "invalid_UTF-8"),
        (P.field(1, P.labelPair("a", "1")) + P.field(1, P.labelPair("a", "2")), "duplicate_label"),
        // Known fields of the wrong wire type, however deep: Prometheus's decoder
        // would fail the whole scrape on them.
        (P.field(2, P.varintField(1, 5)), "bad_field_type"),
        (P.varintField(7, 1), "bad_field_type"),
        (P.field(7, P.field(3, P.field(3, P.field(1, P.varintField(1, 1))))), "bad_field_type"),
        // A metric's own fields are checked before the messages in them, in every
        // path: a counter sent as a varint is found before the label pair cut short,
        // and a cut-off field before a label pair's wrong wire type.
        (P.field(1, [0x0A, 0x05, 0x61]) + P.varintField(3, 0), "bad_field_type"),
        (P.field(1, P.varintField(1, 1)) + [0xFF], "truncated_varint"),
    ])
    func malformedMetricsAreDroppedAndCounted(_ metric: [UInt8], _ reason: String) {
        let good = P.metric([], P.gauge(1))
        let input = P.delimited([P.family("m", type: 1, metrics: [metric, good])])
        let (output, report) = Self.run(input)
        #expect(output == P.delimited([P.family("m", type: 1, metrics: [good])]))
        #expect(report.linesRejected == [reason: 1], "\(report.linesRejected)")
    }

    /// A histogram is one message: rules that treat its parts alike act on it whole;
    /// rules that treat them apart (drop `_bucket` only, or the family name only) drop
    /// it, counted, rather than keep what a rule dropped.
    @Test(arguments: [
        ("h.*", "", "relabel"),
        ("h_bucket", "", "parts_relabeled_apart"),
        ("h", "", "parts_relabeled_apart"),
        ("other", "kept", ""),
    ])
    func histogramPartsAreRelabeledAlike(_ regex: String, _ kept: String, _ reason: String) throws {
        let histogram = P.field(7, P.varintField(1, 3) + P.doubleField(2, 1.5)
                                    + P.field(3, P.varintField(1, 3) + P.doubleField(2, 1)))
        let input = P.delimited([P.family("h", type: 4, metrics: [P.metric([("a", "b")], histogram)])])
        let rule = try RelabelRule(.init(action: "drop", sourceLabels: ["__name__"], regex: regex))
        let (output, report) = Self.run(input, FilterPolicy(relabelRules: [rule]))
        #expect(output == (kept.isEmpty ? [] : input))
        #expect(report.seriesDropped == (reason.isEmpty ? [:] : [reason: 1]))
    }

    /// A policy whose rules act on `le` or `quantile` (labels only the text formats
    /// have) cannot filter protobuf: the gateway then never asks for it.
    @Test(arguments: [
        (RelabelRule.Fields(action: "drop", sourceLabels: ["__name__"], regex: "x_.*"), true),
        (.init(action: "labeldrop", regex: "pod_.*"), true),
        (.init(action: "labelkeep", regex: "le|quantile|job|instance"), true),
        (.init(action: "labelkeep", regex: "job|instance"), false),
        (.init(action: "drop", sourceLabels: ["le"], regex: "\\+Inf"), false),
        (.init(action: "labeldrop", regex: "l.*"), false),
        (.init(action: "labelmap", regex: "(quantile)", replacement: "q"), false),
        (.init(action: "replace", targetLabel: "le", replacement: "1"), false),
        (.init(action: "replace", sourceLabels: ["a"], targetLabel: "${1}", regex: "(.*)", replacement: "v"), false),
        (.init(action: "labelmap", regex: "meta_(.+)", replacement: "$1"), false),
    ])
    func policiesThatActOnBucketLabelsDoNotReadProtobuf(_ fields: RelabelRule.Fields, _ reads: Bool) throws {
        #expect(FilterPolicy(relabelRules: [try RelabelRule(fields)]).readsProtobuf == reads)
    }

    /// Detectors look at every label not exempt: `le` and `quantile` are exempt by
    /// default; a policy that takes them off the list is served text only.
    @Test func detectorsOnBucketLabelsDoNotReadProtobuf() {
        var policy = FilterPolicy()
        policy.pii = PIIPolicy(detectorRules: [.init(name: "ip", detector: .ipv4, action: .redact)])
        #expect(policy.readsProtobuf)
        policy.pii = PIIPolicy(detectorRules: [.init(name: "ip", detector: .ipv4, action: .redact)], detectorExemptLabels: [])
        #expect(!policy.readsProtobuf)
    }

    /// `sample_limit` and `label_limit` count a histogram as the text formats do: its
    /// buckets (with the implicit `+Inf`), `_sum` and `_count`; its `le` label.
    @Test(arguments: [(5 as Int?, nil as Int?, "sample_limit"), (6, nil, ""), (nil, 2, "label_limit"), (nil, 3, "")])
    func limitsCountAHistogramAsTextDoes(_ sampleLimit: Int?, _ labelLimit: Int?, _ reason: String) {
        let buckets = [0.1, 0.5, 1].map { P.field(3, P.varintField(1, 1) + P.doubleField(2, $0)) }.joined()
        let histogram = P.field(7, P.varintField(1, 1) + P.doubleField(2, 0.2) + Array(buckets))
        let input = P.delimited([P.family("h", type: 4, metrics: [P.metric([("a", "1"), ("b", "2")], histogram)])])
        var policy = FilterPolicy()
        policy.limits = SeriesLimits(labelLimit: labelLimit, sampleLimit: sampleLimit)
        let (output, report) = Self.run(input, policy)
        #expect(output == (reason.isEmpty ? input : []))
        #expect(report.seriesDropped == (reason.isEmpty ? [:] : [reason: 1]), "\(report)")
    }

    /// Bounds and clashes: a metric longer than a line's bound, a metric field of the
    /// wrong wire type, a label that escaping turns into `__name__`, exemplar labels
    /// that escaping makes one (the exemplar goes, the metric stays).
    @Test func boundsAndClashesAreCounted() {
        var policy = FilterPolicy()
        policy.maximumLineLength = 1024
        let long = P.metric([("a", String(repeating: "x", count: 2000))], P.gauge(1))
        let (output, report) = Self.run(P.delimited([P.family("m", type: 1, metrics: [long, P.metric([], P.gauge(2))])]), policy)
        #expect(output == P.delimited([P.family("m", type: 1, metrics: [P.metric([], P.gauge(2))])]))
        #expect(report.linesRejected == ["metric_too_large": 1])
        let wrongType = P.delimited([P.field(1, "m") + P.varintField(4, 7)])
        let (nothing, bad) = Self.run(wrongType)
        #expect(nothing.isEmpty && bad.linesRejected == ["bad_metric_field": 1])
        let clash = P.delimited([P.family("m", type: 1, metrics: [P.metric([("__name..", "x")], P.gauge(1))])])
        let (dropped, clashed) = Self.run(clash, names: .underscores)
        #expect(dropped.isEmpty && clashed.seriesDropped == ["escaped_name_clash": 1])
        let exemplarClash = P.delimited([P.family("c_total", type: 0, metrics: [
            P.metric([], P.counter(1, exemplar: P.exemplar([("a.b", "1"), ("a_b", "2")], 1))),
        ])])
        let (kept, _) = Self.run(exemplarClash, names: .underscores)
        #expect(kept == P.delimited([P.family("c_total", type: 0, metrics: [P.metric([], P.counter(1))])]))
    }

    /// UTF-8 names for a legacy scraper: the family's name and the label names are
    /// escaped, the values kept.
    @Test func namesAreEscapedForALegacyScraper() {
        let input = P.delimited([P.family("my.metric", type: 1, metrics: [P.metric([("a.b", "c.d")], P.gauge(1))])])
        let (output, _) = Self.run(input, names: .underscores)
        #expect(output == P.delimited([P.family("my_metric", type: 1, metrics: [P.metric([("a_b", "c.d")], P.gauge(1))])]))
        let (utf8, _) = Self.run(input, names: .allowUTF8)
        #expect(utf8 == input)
    }
}
