import Foundation
@testable import GatewayCore
@testable import MetricsFilter
import Testing
import TestSupport

/// The streaming filter on its own: scanning across chunk boundaries, PII rules,
/// cardinality limits, duplicates.
@Suite struct FilterTests {
    static let textInput = """
        # HELP http_requests_total Requests.\\nWith an escaped newline.
        # TYPE http_requests_total counter
        http_requests_total{method="get",path="/a b",note="q\\"uote\\\\back\\nline"} 1027 1395066363000
        http_requests_total{method="post",path="/",} 3
        \t  http_requests_total { method = "put" , path="/x" } +Inf
        # a comment that is dropped
        metric_without_labels 1e-3
        nan_metric NaN
        bad line without value
        bad_metric{a="b" 1

        # TYPE rpc_duration_seconds summary
        rpc_duration_seconds{quantile="0.5"} 4.773
        rpc_duration_seconds_sum 1.7560473e+07
        rpc_duration_seconds_count 2693
        {"my.dotted.metric","label.with.dots"="v"} 5
        last_line_without_newline 7
        """

    static let openMetricsInput = """
        # TYPE requests counter
        # UNIT requests requests
        # HELP requests Requests with \\"quotes\\".
        requests_total{path="/"} 5 1.5 # {trace_id="abc123"} 1.0 1.25
        requests_created{path="/"} 1.0
        # TYPE temperature gauge
        temperature 21.5
        temperature{room="x"} -Inf
        # TYPE latency histogram
        latency_bucket{le="0.5"} 1 # {trace_id="t1"} 0.3
        latency_bucket{le="+Inf"} 2
        latency_count 2
        latency_sum 0.9
        # EOF

        """

    @Test(arguments: [ExpositionFormat.text, .openMetrics])
    func everyChunkBoundaryGivesTheSameOutput(_ format: ExpositionFormat) {
        let input = format == .text ? Self.textInput : Self.openMetricsInput
        let (whole, report) = FilterHarness.run(input, format: format)
        #expect(report.samplesOut > 5)
        for size in 1...input.utf8.count {
            let (chunked, _) = FilterHarness.run(input, format: format, chunk: size)
            if chunked != whole {
                Issue.record("chunks of \(size) bytes gave other output:\n\(chunked)\nvs\n\(whole)")
                return
            }
        }
    }

    @Test func textFormatIsReadAsPrometheusReadsItAndBadLinesAreDropped() {
        let (output, report) = FilterHarness.run(Self.textInput)
        #expect(report.samplesIn == 10)
        #expect(report.samplesOut == 10)
        #expect(report.linesRejected.values.reduce(0, +) == 2, "\(report.linesRejected)")
        #expect(!output.contains("bad"))
        #expect(!output.contains("a comment"))
        #expect(output.contains("http_requests_total{method=\"post\",path=\"/\",} 3"), "lines pass unchanged")
        #expect(output.hasSuffix("last_line_without_newline 7\n"))
        for line in output.split(separator: "\n") {
            guard case .success = ExpositionParser.parse(Array(line.utf8), format: .text) else {
                Issue.record("output line does not parse: \(line)")
                continue
            }
        }
        // `__name__` in the braces repeats the name: Prometheus refuses the sample.
        for format in [ExpositionFormat.text, .openMetrics] {
            let (repeated, result) = FilterHarness.run("m{__name__=\"x\",a=\"b\"} 1\nm{a=\"c\"} 2\n", format: format)
            #expect(repeated.hasPrefix("m{a=\"c\"} 2\n"), "\(format): \(repeated)")
            #expect(result.linesRejected["duplicate_label"] == 1, "\(result.linesRejected)")
        }
    }

    @Test func openMetricsIsStrictAndEndsWithEOF() {
        let (output, report) = FilterHarness.run(Self.openMetricsInput, format: .openMetrics)
        #expect(report.samplesOut == 8, "\(report)")
        #expect(output.hasSuffix("# EOF\n"))
        let (afterEOF, rejected) = FilterHarness.run("a 1\n# EOF\nb 2\n", format: .openMetrics)
        #expect(afterEOF == "a 1\n# EOF\n")
        #expect(rejected.linesRejected["text_after_eof"] == 1)
        for bad in ["a  1", "a 1 ", "a{b=\"c\",} 1", "", "# random comment", "# HELP a"] {
            let (out, result) = FilterHarness.run(bad + "\n# EOF\n", format: .openMetrics)
            #expect(out == "# EOF\n", "\(bad) must not pass: \(out)")
            #expect(result.linesRejected.values.reduce(0, +) == 1)
        }
    }

    @Test func overlongLinesAreDroppedWhole() {
        let long = "x{a=\"" + String(repeating: "y", count: 5000) + "\"} 1\n"
        let (output, report) = FilterHarness.run("a 1\n" + long + "b 2\n", FilterPolicy(maximumLineLength: 1024), chunk: 100)
        #expect(output == "a 1\nb 2\n")
        #expect(report.linesRejected["line_too_long"] == 1)
    }

    /// 100k series carrying e-mails, IPs and session ids: none of them is left in
    /// the output, and every series is still there (pseudonyms keep them apart).
    @Test func piiPolicyLeavesNoTraceOnAHundredThousandSeries() throws {
        var input = "# TYPE app_requests_total counter\n"
        for index in 0..<100_000 {
            input += "app_requests_total{user=\"user\(index)@example.com\",client=\"10.\(index % 256).\((index / 256) % 256).7\",session_id=\"sess-\(index)\",route=\"/r\(index % 10)\"} \(index)\n"
        }
        let (output, report) = FilterHarness.run(input, try FilterHarness.piiPolicy(), chunk: 65536)
        #expect(report.samplesOut == 100_000)
        #expect(!output.contains("@example.com"))
        #expect(!output.contains("sess-"))
        #expect(output.range(of: #"10\.\d+\.\d+\.7"#, options: .regularExpression) == nil)
        #expect(report.piiActions[FilterReport.PIIKey(rule: "email", action: "hash")] == 100_000)
        #expect(report.piiActions[FilterReport.PIIKey(rule: "ip", action: "redact")] == 100_000)
        #expect(report.piiActions[FilterReport.PIIKey(rule: "session", action: "hash")] == 100_000)
    }

    @Test func pseudonymsAreStableAndKeyed() throws {
        let policy = try FilterHarness.piiPolicy()
        let input = "m{session_id=\"abc\",mail=\"bob@example.org\"} 1\n"
        let (first, _) = FilterHarness.run(input, policy)
        let (second, _) = FilterHarness.run(input, policy)
        #expect(first == second)
        var rekeyed = policy
        rekeyed.pii.hashKey = Array("another key, another pseudonym!!".utf8)
        let (third, _) = FilterHarness.run(input, rekeyed)
        #expect(third != first)
        #expect(first.contains("session_id=\"h_") && first.count == third.count)
    }

    /// `input` through a text filter on the plain path, or made to take the full path;
    /// through `memo` when given.
    private static func run(_ policy: FilterPolicy, _ input: String, plainPath: Bool, names: NameEscaping = .allowUTF8,
                            memo: SeriesMemo? = nil) -> (String, FilterReport) {
        let filter = StreamingFilter(policy: policy, format: .text, names: names, memo: memo)
        #expect(filter.usesPlainPath)
        filter.usesPlainPath = plainPath
        var output: [UInt8] = []
        filter.process(Array(input.utf8), into: &output)
        let report = filter.finish(into: &output)
        return (String(decoding: output, as: UTF8.self), report)
    }

    /// Plain lines take the plain path under every rule list: rules that decide by
    /// names alone (drop/keep on `__name__`, labeldrop/labelkeep that keep `__name__`)
    /// on the line's positions, any other through `RelabelLabels`. Both decide as the
    /// full parser and `LabelSet` do (the fuzz target holds them to it on generated
    /// bodies); here, one body with each kind of line and rule.
    @Test func everyRelabelRuleListTakesThePlainPath() throws {
        var policy = try FilterHarness.piiPolicy()
        policy.relabelRules = try [
            RelabelRule(.init(action: "replace", sourceLabels: ["route"], targetLabel: "item",
                              regex: "/items/(\\d+)", replacement: "item-$1")),
            RelabelRule(.init(action: "replace", sourceLabels: ["kind"], targetLabel: "__name__", regex: "(rename)",
                              replacement: "renamed_total")),
            RelabelRule(.init(action: "labelmap", regex: "meta_(.+)", replacement: "m.$1")),
            RelabelRule(.init(action: "hashmod", sourceLabels: ["route", "code"], targetLabel: "shard", modulus: 7)),
            RelabelRule(.init(action: "uppercase", sourceLabels: ["method"], targetLabel: "method")),
            RelabelRule(.init(action: "dropequal", sourceLabels: ["route"], targetLabel: "b")),
            RelabelRule(.init(action: "labeldrop", regex: "meta_.*|pod_uid")),
        ]
        let input = """
            http{route="/items/7",code="200",method="get",session_id="s1",mail="bob@example.org"} 1 1700000000000
            http{route="/other",code="500",method="post",meta_zone="eu",pod_uid="9"} 2
            http{route="/items/8",kind="rename"} 3
            http{b="/items/9",route="/items/9"} 4
            http{b="y",route="/items/9"} 5
            http{a="",route="/items/10"} 6
            http{route="/items/7",code="200",method="GET",session_id="s1",mail="bob@example.org"} 7

            """
        let (plain, plainReport) = Self.run(policy, input, plainPath: true)
        let (full, fullReport) = Self.run(policy, input, plainPath: false)
        #expect(plain == full)
        #expect(plainReport == fullReport)
        #expect(plain.contains("item=\"item-7\""))
        #expect(plain.contains("renamed_total{"))
        #expect(plain.contains("\"m.zone\"=\"eu\""))
        #expect(!plain.contains("pod_uid") && !plain.contains("bob@"))
        #expect(plain.contains("method=\"GET\""))
        #expect(!plain.contains(" 4\n"), "dropequal drops a series whose route equals its b")
        #expect(plainReport.seriesDropped["duplicate"] == 1, "the last line is the first once relabeled")

        // Rules that set a label to the value it has change nothing: the line goes out
        // as it came (its label order kept), on both paths, and is not counted rewritten.
        let idempotent = FilterPolicy(relabelRules: try [
            RelabelRule(.init(action: "labelmap", regex: "a_(.*)", replacement: "$1")),
            RelabelRule(.init(action: "replace", sourceLabels: ["x"], targetLabel: "y", regex: "(.*)", replacement: "$1")),
        ])
        let same = "m{y=\"1\",a_x=\"1\",x=\"1\"} 5\n"
        let (sameOutput, sameReport) = Self.run(idempotent, same, plainPath: true)
        #expect(sameOutput == same)
        #expect(sameReport.samplesRewritten == 0)
        #expect(Self.run(idempotent, same, plainPath: false) == (sameOutput, sameReport))

        // A value of the line made the metric name is checked as a name: a scraper
        // without UTF-8 names refuses `/items/7`, so the series is dropped, as on the
        // full path; one with them takes it.
        let renaming = FilterPolicy(relabelRules: try [
            RelabelRule(.init(action: "labelmap", regex: "route", replacement: "__name__")),
        ])
        let routed = "http{route=\"/items/7\"} 1\nhttp{route=\"items_8\"} 2\n"
        for names in [NameEscaping.underscores, .allowUTF8] {
            let (renamed, renamedReport) = Self.run(renaming, routed, plainPath: true, names: names)
            #expect(Self.run(renaming, routed, plainPath: false, names: names) == (renamed, renamedReport))
            #expect(renamed.contains("items_8{route=\"items_8\"} 2"))
            #expect(renamedReport.seriesDropped["invalid_name"] == (names == .allowUTF8 ? nil : 1))
        }

        let rules = try [RelabelRule(.init(action: "labeldrop", regex: "pod_uid")),
                         RelabelRule(.init(action: "drop", sourceLabels: ["__name__"], regex: "go_.*"))]
        let nameOnly = "go_gc 1\nhttp{pod_uid=\"1\",code=\"200\"} 2\nhttp{pod_uid=\"2\",code=\"200\"} 3\n"
        let (output, report) = FilterHarness.run(nameOnly, FilterPolicy(relabelRules: rules))
        #expect(output == "http{code=\"200\"} 2\n")
        #expect(report.seriesDropped["relabel"] == 1)
        #expect(report.seriesDropped["duplicate"] == 1)
    }

    /// The plain path meets a line's labels in name order only when a rule can end the
    /// series (what is counted then depends on the order), in the line's order
    /// otherwise; it writes a marker escaped from a copy made once. Either way it must
    /// give the full path's series and counts.
    @Test func thePIIRulesGiveTheFullPathsOutputOnThePlainPath() throws {
        // Labels out of name order: the session label before the card's note in the
        // line, after it in name order.
        let input = """
            m{zone="eu",session_id="s1",ip="10.0.0.1",note="4111 1111 1111 1111",mail="amy@example.com"} 1
            m{zone="us",session_id="s2",ip="10.0.0.2",mail="bob@example.com"} 2
            m{zone="ap",ip="10.0.0.3"} 3

            """
        let marker = #"re"da\cted"#
        let endsSeries = PIIPolicy(
            labelRules: [.init(name: "session", labelNames: ["session_id"], action: .hash)],
            detectorRules: [.init(name: "card", detector: .card, action: .dropSeries),
                            .init(name: "email", detector: .email, action: .hash),
                            .init(name: "ip", detector: .ipv4, action: .redact)],
            marker: marker, hashKey: Array(repeating: 7, count: 32))
        var neverEnds = endsSeries
        neverEnds.detectorRules[0].action = .drop
        // The full path writes a changed line's labels in name order, the plain path in
        // the line's: the same series either way (no value here holds a comma).
        func sortingLabels(_ output: String) -> [String] {
            output.split(separator: "\n").map { line in
                guard let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") else { return String(line) }
                let labels = line[line.index(after: open)..<close].split(separator: ",").sorted()
                return "\(line[..<open]){\(labels.joined(separator: ","))\(line[close...])"
            }
        }
        let dropsZone = try [RelabelRule(.init(action: "labeldrop", regex: "zone"))]
        for pii in [endsSeries, neverEnds] {
            let policy = FilterPolicy(pii: pii)
            let (plain, plainReport) = Self.run(policy, input, plainPath: true)
            let (full, fullReport) = Self.run(policy, input, plainPath: false)
            #expect(sortingLabels(plain) == sortingLabels(full))
            #expect(plainReport == fullReport)
            // Through a memo, first filled (each rewritten series part written down
            // there as on the way out), then replayed.
            let memo = SeriesMemo(budget: 1 << 20)
            #expect(Self.run(policy, input, plainPath: true, memo: memo) == (plain, plainReport))
            #expect(Self.run(policy, input, plainPath: true, memo: memo) == (plain, plainReport))
            // With a name-only rule that drops a label before the PII rules see it.
            let relabeled = FilterPolicy(relabelRules: dropsZone, pii: pii)
            let (plainDropped, plainDroppedReport) = Self.run(relabeled, input, plainPath: true)
            let (fullDropped, fullDroppedReport) = Self.run(relabeled, input, plainPath: false)
            #expect(sortingLabels(plainDropped) == sortingLabels(fullDropped))
            #expect(plainDroppedReport == fullDroppedReport)
            #expect(!plainDropped.contains("zone="))
            #expect(plain.contains(#"ip="re\"da\\cted""#), "the marker escaped as a label value")
            #expect(!plain.contains("amy@") && !plain.contains("bob@") && !plain.contains("s1\"") && !plain.contains("4111"))
        }
        let (ended, endedReport) = Self.run(FilterPolicy(pii: endsSeries), input, plainPath: true)
        #expect(!ended.contains(" 1\n") && endedReport.seriesDropped["pii"] == 1)
        // Name order: ip, mail, note (the card ends the series), session_id, zone: the
        // rules met before the card count, the session rule after it does not.
        #expect(endedReport.piiActions[FilterReport.PIIKey(rule: "session", action: "hash")] == 1)
        #expect(endedReport.piiActions[FilterReport.PIIKey(rule: "email", action: "hash")] == 2)
        let (kept, keptReport) = Self.run(FilterPolicy(pii: neverEnds), input, plainPath: true)
        #expect(kept.contains(" 1\n") && keptReport.seriesDropped["pii"] == nil)
        #expect(keptReport.piiActions[FilterReport.PIIKey(rule: "session", action: "hash")] == 2)
        #expect(keptReport.piiActions[FilterReport.PIIKey(rule: "card", action: "drop")] == 1)
    }

    @Test func exemplarLabelsGoThroughThePIIRules() throws {
        let input = "# TYPE r counter\nr_total 1 # {user=\"amy@example.com\",trace_id=\"x\"} 1\n# EOF\n"
        let (output, _) = FilterHarness.run(input, try FilterHarness.piiPolicy(), format: .openMetrics)
        #expect(!output.contains("amy@example.com"))
        #expect(output.contains("trace_id=\"x\""))
    }

    @Test func droppingALabelNeverEmitsTwoSamplesWithOneIdentity() throws {
        let input = "m{user_token=\"a\",route=\"/\"} 1\nm{user_token=\"b\",route=\"/\"} 2\nm{route=\"/x\"} 3\n"
        let (output, report) = FilterHarness.run(input, try FilterHarness.piiPolicy())
        #expect(output == "m{route=\"/\"} 1\nm{route=\"/x\"} 3\n")
        #expect(report.seriesDropped["duplicate"] == 1)
    }

    @Test func cardNumbersDropTheSeries() throws {
        let (output, report) = FilterHarness.run("m{note=\"4111 1111 1111 1111\"} 1\nm{note=\"4111 1111 1111 1112\"} 2\n", try FilterHarness.piiPolicy())
        #expect(output == "m{note=\"4111 1111 1111 1112\"} 2\n", "only the Luhn-valid number is a card")
        #expect(report.seriesDropped["pii"] == 1)
    }

    @Test func detectorsFindWhatTheyLookFor() {
        let cases: [(PIIDetector, String, Bool)] = [
            (.email, "contact: jo.doe+x@mail.example.co.uk", true), (.email, "user@localhost", false), (.email, "@home", false),
            (.ipv4, "from 192.168.0.1:8080", true), (.ipv4, "1.2.3", false), (.ipv4, "256.1.1.1", false), (.ipv4, "v1.2.3.4.5", false),
            (.ipv6, "fe80::1ff:fe23:4567:890a", true), (.ipv6, "2001:db8::8a2e:370:7334", true), (.ipv6, "12:30", false),
            (.card, "4111-1111-1111-1111", true), (.card, "4111111111111112", false), (.card, "1234", false),
            (.bearer, "Authorization: Bearer abcdef123456", true), (.bearer, "bearer x", false),
            (.jwt, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_123", true), (.jwt, "eyJ.x", false),
        ]
        for (detector, value, expected) in cases {
            #expect(PIIDetection.contains(detector, in: Array(value.utf8)) == expected, "\(detector) in \(value)")
        }
    }

    static func body(_ series: ClosedRange<Int>, extraFirst: ClosedRange<Int>? = nil) -> String {
        var text = "# TYPE jobs_total counter\n"
        for index in extraFirst.map(Array.init) ?? [] { text += "jobs_total{id=\"new\(index)\"} 1\n" }
        for index in series { text += "jobs_total{id=\"j\(index)\"} \(index)\n" }
        text += "# TYPE wait_seconds histogram\n"
        for queue in ["a", "b", "c"] {
            for le in ["0.1", "1", "+Inf"] { text += "wait_seconds_bucket{queue=\"\(queue)\",le=\"\(le)\"} 1\n" }
            text += "wait_seconds_sum{queue=\"\(queue)\"} 1\nwait_seconds_count{queue=\"\(queue)\"} 1\n"
        }
        return text
    }

    /// Admission is stable: what was admitted stays admitted, even when new series
    /// come first in a later scrape; a histogram is admitted or dropped whole.
    @Test func cappedPolicyAdmitsTheSameSeriesEveryTime() {
        var policy = FilterPolicy()
        policy.limits = SeriesLimits(seriesPerMetric: 10)
        let tracker = SeriesTracker(limits: policy.limits)
        let (first, firstReport) = FilterHarness.run(Self.body(1...20), policy, tracker: tracker)
        let (again, _) = FilterHarness.run(Self.body(1...20), policy, tracker: tracker)
        #expect(first == again)
        #expect(firstReport.seriesDropped["series_limit"] == 10)
        #expect(first.contains("jobs_total{id=\"j10\"}") && !first.contains("jobs_total{id=\"j11\"}"))
        // New series first in the body: the admitted ten are still the ones passed on.
        let (later, laterReport) = FilterHarness.run(Self.body(1...20, extraFirst: 1...5), policy, tracker: tracker)
        #expect(!later.contains("new1"))
        #expect(later.contains("jobs_total{id=\"j1\"}") && later.contains("jobs_total{id=\"j10\"}"))
        #expect(laterReport.seriesDropped["series_limit"] == 15)
        // Three histogram units of five samples each, all admitted whole.
        #expect(later.split(separator: "\n").filter { $0.hasPrefix("wait_seconds") }.count == 15)
        #expect(tracker.admittedPerFamily["jobs_total"] == 10)
        #expect(tracker.admittedPerFamily["wait_seconds"] == 3)
    }

    /// A remembered series keeps what admission found for its unit (`UnitHint`): the
    /// unit's number, or that its key was absent. Neither is trusted once it no longer
    /// holds: a number naming another unit is probed past, an absence from before a
    /// later admission is probed past, and a hint found for one key is not taken for
    /// another (a remembered line's unit key depends on the metadata before it), so a
    /// known unit is never admitted twice.
    @Test func unitHintsAreUsedOnlyWhileTheyHold() {
        let tracker = SeriesTracker(limits: SeriesLimits(sampleLimit: 3))
        func key(_ id: String) -> SeriesTracker.UnitKey {
            SeriesTracker.UnitKey(Array("m".utf8), [Label(name: Array("id".utf8), value: Array(id.utf8))])
        }
        let (a, b, c) = (key("a"), key("b"), key("c"))
        func admit(_ scrape: inout ScrapeAdmission, _ key: SeriesTracker.UnitKey, samplesSoFar: Int,
                   _ hint: inout SeriesTracker.UnitHint) -> ScrapeAdmission.Verdict {
            Array("m".utf8).withUnsafeBufferPointer {
                scrape.admit(key, family: $0, values: [], samplesSoFar: samplesSoFar, unitHint: &hint)
            }
        }
        var first = ScrapeAdmission(tracker: tracker)
        var hintA = SeriesTracker.UnitHint.unknown
        var hintB = SeriesTracker.UnitHint.unknown
        #expect(admit(&first, a, samplesSoFar: 0, &hintA) == .admitted)
        #expect(hintA.number(for: a, tracker: tracker.identity) == 0)
        #expect(admit(&first, b, samplesSoFar: 5, &hintB) == .refused(.sampleLimit))
        let staleAbsence = hintB
        #expect(staleAbsence.absentAfter(for: b, tracker: tracker.identity) == 1)

        var second = ScrapeAdmission(tracker: tracker)
        #expect(admit(&second, b, samplesSoFar: 0, &hintB) == .admitted, "absent while nothing was admitted since")
        #expect(hintB.number(for: b, tracker: tracker.identity) == 1)

        var third = ScrapeAdmission(tracker: tracker)
        var stale = staleAbsence
        #expect(admit(&third, b, samplesSoFar: 0, &stale) == .admitted)
        #expect(stale.number(for: b, tracker: tracker.identity) == 1, "the absence no longer holds: b was found")
        var hintC = SeriesTracker.UnitHint.unknown
        #expect(admit(&third, c, samplesSoFar: 5, &hintC) == .refused(.sampleLimit))
        #expect(hintC.absentAfter(for: c, tracker: tracker.identity) == 2)

        var fourth = ScrapeAdmission(tracker: tracker)
        var otherUnit = SeriesTracker.UnitHint(key: b, tracker: tracker.identity, number: 0)
        #expect(admit(&fourth, b, samplesSoFar: 0, &otherUnit) == .admitted)
        #expect(otherUnit.number(for: b, tracker: tracker.identity) == 1, "number 0 is a's unit, not b's")
        var otherKey = hintC
        #expect(admit(&fourth, a, samplesSoFar: 1, &otherKey) == .admitted, "c's absence says nothing of a")
        #expect(otherKey.number(for: a, tracker: tracker.identity) == 0)
        #expect(tracker.admittedPerFamily["m"] == 2)
        #expect(tracker.admittedUnits == 2)

        // Another tracker (a memo kept while the limits changed): its count of
        // admissions says nothing of this one's.
        let other = SeriesTracker(limits: SeriesLimits(sampleLimit: 3))
        var otherFirst = ScrapeAdmission(tracker: other)
        var fresh = SeriesTracker.UnitHint.unknown
        #expect(admit(&otherFirst, a, samplesSoFar: 0, &fresh) == .admitted)
        var otherSecond = ScrapeAdmission(tracker: other)
        var foreign = SeriesTracker.UnitHint(key: a, tracker: tracker.identity, absentAfter: 1)
        #expect(admit(&otherSecond, a, samplesSoFar: 0, &foreign) == .admitted)
        #expect(other.admittedPerFamily["m"] == 1)
    }

    @Test func histogramUnitsAreAdmittedOrDroppedWhole() {
        var policy = FilterPolicy()
        policy.limits = SeriesLimits(seriesPerMetric: 2)
        let (output, report) = FilterHarness.run(Self.body(1...1), policy)
        let kept = output.split(separator: "\n").filter { $0.hasPrefix("wait_seconds") }
        #expect(kept.count == 10, "two whole histograms: \(kept)")
        #expect(!output.contains("queue=\"c\""))
        #expect(report.seriesDropped["series_limit"] == 1)
        #expect(report.seriesDropped["unit_refused"] == 4)
    }

    @Test func sampleLimitReservesRoomForAdmittedSeries() {
        var policy = FilterPolicy()
        policy.limits = SeriesLimits(sampleLimit: 12)
        let tracker = SeriesTracker(limits: policy.limits)
        let (first, _) = FilterHarness.run(Self.body(1...20), policy, tracker: tracker)
        let firstSeries = first.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(firstSeries.count <= 12)
        let (later, _) = FilterHarness.run(Self.body(1...20, extraFirst: 1...5), policy, tracker: tracker)
        #expect(!later.contains("new1"), "new series do not push out admitted ones")
        #expect(later.split(separator: "\n").filter { !$0.hasPrefix("#") } == firstSeries)
    }

    @Test func labelLimitsDropTheSeries() {
        var policy = FilterPolicy()
        policy.limits = SeriesLimits(labelLimit: 2, labelValueLengthLimit: 5)
        let (output, report) = FilterHarness.run("a{x=\"1\",y=\"2\"} 1\nb{x=\"1\",y=\"2\",z=\"3\"} 1\nc{x=\"123456\"} 1\n", policy)
        #expect(output == "a{x=\"1\",y=\"2\"} 1\n")
        #expect(report.seriesDropped["label_limit"] == 1)
        #expect(report.seriesDropped["label_value_length_limit"] == 1)
    }

    @Test func filterSectionsAreReadStrictly() throws {
        let folder = try makeTemporaryFolder("sg-filter-config")
        let key = folder.appendingPathComponent("pii.key").path
        try "0123456789abcdef0123".write(toFile: key, atomically: true, encoding: .utf8)
        func load(_ text: String) throws -> GatewayConfiguration {
            let file = folder.appendingPathComponent("scrapeguard-\(UUID().uuidString).yml").path
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            return try GatewayConfiguration.load(file: file)
        }
        let good = try load("""
            metric_relabel_configs:
              - action: labeldrop
                regex: pod_uid
            pii:
              hash_key_file: pii.key
              labels:
                - names: [session_id]
                  action: hash
              detectors:
                - detector: email
                  action: redact
            limits:
              series_per_metric: 100
              series_idle_timeout: 5m
            """)
        #expect(good.filter.relabelRules.count == 1)
        #expect(good.filter.pii.labelRules.count == 1 && good.filter.pii.detectorRules.count == 1)
        #expect(good.filter.limits.seriesPerMetric == 100)
        let refusals: [(String, String)] = [
            ("pii:\n  detectors:\n    - detector: phone\n      action: redact\n", "pii.detectors[0].detector: expected one of"),
            ("pii:\n  labels:\n    - names: [a]\n      action: hash\n", "pii.hash_key_file: a hash action needs a key file"),
            ("pii:\n  hash_key_file: missing.key\n", "pii.hash_key_file: cannot read"),
            ("limits:\n  series_per_metric: 0\n", "limits.series_per_metric: must be at least 1"),
            ("limits:\n  series_limit: 5\n", "limits.series_limit: unknown key"),
            ("metric_relabel_configs:\n  - action: hashmod\n    target_label: x\n", "metric_relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus"),
            ("filter:\n  invalid_lines: ignore\n", "filter.invalid_lines: expected one of drop, fail_scrape"),
        ]
        for (text, expected) in refusals {
            do {
                _ = try load(text)
                Issue.record("accepted: \(text)")
            } catch let error as ConfigError {
                #expect("\(error.key): \(error.reason)".hasPrefix(expected), "\(error)")
            }
        }
    }

    /// An idle timeout of centuries is "never": the tracker's integer clock saturates
    /// instead of wrapping (which would forget every series at once) or trapping, and
    /// admission stays stable across an expiry pass.
    @Test func aCenturiesLongIdleTimeoutNeitherWrapsNorTraps() async throws {
        let limits = SeriesLimits(sampleLimit: 3, valuesPerLabel: 5, idleTimeout: .seconds(877 * 365 * 24 * 3600))
        let tracker = SeriesTracker(limits: limits)
        let body = "a{k=\"1\"} 1\na{k=\"2\"} 1\na{k=\"3\"} 1\na{k=\"4\"} 1\n"
        let first = FilterHarness.run(body, FilterPolicy(limits: limits), tracker: tracker)
        try await Task.sleep(for: .milliseconds(1100))  // past the tracker's once-a-second expiry pass
        let second = FilterHarness.run(body, FilterPolicy(limits: limits), tracker: tracker)
        #expect(first.0 == second.0 && first.1.samplesOut == 3, "\(first.0)\n\(second.0)")
        #expect(tracker.admittedUnits == 3)
    }
}
