import MetricsFilter
import TestSupport
import Testing

/// UTF-8 names (Prometheus 3) end to end through the filter: read quoted in both
/// formats, written quoted to a scraper that asked for `allow-utf-8`, escaped the way
/// any other scraper asked (prometheus/common's `EscapeName`).
@Suite struct UTF8NameTests {
    /// Metric names and what `underscores`, `dots` and `values` make of them: Go's
    /// `model.EscapeName`, run on each (prometheus/common `model/metric.go`, and its
    /// `TestEscapeName`). A legacy name is never changed (`EscapeMetricFamily` does not
    /// escape one, `dots` included).
    @Test(arguments: [
        ("", "", "", ""),
        ("foo_bar", "foo_bar", "foo_bar", "foo_bar"),
        ("a:b", "a:b", "a:b", "a:b"),
        ("0abc", "_abc", "__abc", "U___30_abc"),
        ("my.metric", "my_metric", "my_dot_metric", "U__my_2e_metric"),
        ("a-b", "a_b", "a__b", "U__a_2d_b"),
        ("a\"b", "a_b", "a__b", "U__a_22_b"),
        ("é0", "_0", "__0", "U___e9_0"),
        ("A😱", "A_", "A__", "U__A_1f631_"),
        ("花火", "__", "____", "U___82b1__706b_"),
        ("mysystem.prod.west.cpu.load_total", "mysystem_prod_west_cpu_load_total",
         "mysystem_dot_prod_dot_west_dot_cpu_dot_load__total", "U__mysystem_2e_prod_2e_west_2e_cpu_2e_load__total"),
    ])
    func metricNamesAreEscapedAsPrometheusCommonDoes(_ name: String, _ underscores: String, _ dots: String, _ values: String) {
        let bytes = Array(name.utf8)
        #expect(NameEscaping.allowUTF8.metricName(bytes) == bytes)
        #expect(String(decoding: NameEscaping.underscores.metricName(bytes), as: UTF8.self) == underscores)
        #expect(String(decoding: NameEscaping.dots.metricName(bytes), as: UTF8.self) == dots)
        #expect(String(decoding: NameEscaping.values.metricName(bytes), as: UTF8.self) == values)
    }

    /// A label name is escaped by the label rule: a `:` too (Go keeps it, and
    /// Prometheus's lexer then refuses the line; prometheus_client escapes it).
    @Test func labelNamesFollowTheLabelRule() {
        let name = Array("a:b".utf8)
        #expect(NameEscaping.underscores.labelName(name) == Array("a_b".utf8))
        #expect(NameEscaping.dots.labelName(name) == Array("a__b".utf8))
        #expect(NameEscaping.values.labelName(name) == Array("U__a_3a_b".utf8))
        #expect(NameEscaping.values.labelName(Array("plain_name".utf8)) == Array("plain_name".utf8))
    }

    /// A family's samples keep their family under every scheme: the suffix goes after
    /// the escaped family name.
    @Test func suffixesStayWithTheirFamily() {
        let family = Array("my.c".utf8)
        let sample = Array("my.c_total".utf8)
        #expect(NameEscaping.dots.sampleName(sample, family: family) == Array("my_dot_c_total".utf8))
        #expect(NameEscaping.values.sampleName(sample, family: family) == Array("U__my_2e_c_total".utf8))
        #expect(NameEscaping.values.sampleName(sample, family: nil) == Array("U__my_2e_c__total".utf8))
        #expect(NameEscaping.values.sampleName(Array("my.other".utf8), family: family) == Array("U__my_2e_other".utf8))
    }

    static let openMetrics = """
        # TYPE "my.metric" gauge
        # HELP "my.metric" A gauge, with "quotes".
        {"my.metric","a.b"="c",plain="p"} 1
        # TYPE "my.c_seconds" counter
        # UNIT "my.c_seconds" seconds
        {"my.c_seconds_total"} 3
        # TYPE legacy gauge
        legacy{"x.y"="z"} 2
        # EOF

        """

    /// OpenMetrics with quoted names passes whole to a scraper that asked for UTF-8,
    /// and comes out with every name escaped, and nothing else changed, for one that
    /// asked for a scheme.
    @Test(arguments: [
        (NameEscaping.allowUTF8, openMetrics),
        (.underscores, """
            # TYPE my_metric gauge
            # HELP my_metric A gauge, with "quotes".
            my_metric{a_b="c",plain="p"} 1
            # TYPE my_c_seconds counter
            # UNIT my_c_seconds seconds
            my_c_seconds_total 3
            # TYPE legacy gauge
            legacy{x_y="z"} 2
            # EOF

            """),
        (.dots, """
            # TYPE my_dot_metric gauge
            # HELP my_dot_metric A gauge, with "quotes".
            my_dot_metric{a_dot_b="c",plain="p"} 1
            # TYPE my_dot_c__seconds counter
            # UNIT my_dot_c__seconds seconds
            my_dot_c__seconds_total 3
            # TYPE legacy gauge
            legacy{x_dot_y="z"} 2
            # EOF

            """),
        (.values, """
            # TYPE U__my_2e_metric gauge
            # HELP U__my_2e_metric A gauge, with "quotes".
            U__my_2e_metric{U__a_2e_b="c",plain="p"} 1
            # TYPE U__my_2e_c__seconds counter
            # UNIT U__my_2e_c__seconds seconds
            U__my_2e_c__seconds_total 3
            # TYPE legacy gauge
            legacy{U__x_2e_y="z"} 2
            # EOF

            """),
    ])
    func openMetricsNamesReachTheScraperAsItAsked(_ names: NameEscaping, _ expected: String) {
        let (output, report) = FilterHarness.run(Self.openMetrics, format: .openMetrics, names: names)
        #expect(output == expected)
        #expect(report.samplesOut == 3 && report.linesRejected.isEmpty && report.seriesDropped.isEmpty, "\(report)")
    }

    /// The text format: the quoted name is found anywhere in the braces (as Prometheus
    /// reads it; a line with it elsewhere than first is written anew, first, as
    /// exporters write it), with blanks and a trailing comma as the text format allows.
    @Test func textFormatNamesAreReadWhereverPrometheusReadsThem() {
        let input = """
            # HELP "my.metric" Help.
            # TYPE "my.metric" gauge
            {a="b","my.metric"} 1
            { "my.metric" , "c.d" = "e" , } 2

            """
        let (utf8, _) = FilterHarness.run(input, names: .allowUTF8)
        #expect(utf8 == """
            # HELP "my.metric" Help.
            # TYPE "my.metric" gauge
            {"my.metric",a="b"} 1
            { "my.metric" , "c.d" = "e" , } 2

            """)
        let (escaped, _) = FilterHarness.run(input, names: .underscores)
        #expect(escaped == "# HELP my_metric Help.\n# TYPE my_metric gauge\nmy_metric{a=\"b\"} 1\nmy_metric{c_d=\"e\"} 2\n")
    }

    /// Quoted names that are legacy names are written unquoted, for any scraper: a
    /// legacy one could not read the quotes.
    @Test(arguments: [NameEscaping.allowUTF8, .underscores])
    func quotedLegacyNamesAreWrittenUnquoted(_ names: NameEscaping) {
        let (text, _) = FilterHarness.run("# TYPE \"foo\" gauge\n{\"foo\"} 1\nfoo{\"a\"=\"b\"} 2\n", names: names)
        #expect(text == "# TYPE foo gauge\nfoo 1\nfoo{a=\"b\"} 2\n")
        let (openMetrics, _) = FilterHarness.run("# TYPE \"foo\" gauge\n# HELP \"foo\" Help.\n{\"foo\"} 1\n# EOF\n",
                                                 format: .openMetrics, names: names)
        #expect(openMetrics == "# TYPE foo gauge\n# HELP foo Help.\nfoo 1\n# EOF\n")
    }

    /// Lines with a name problem are rejected, each under its reason, and nothing of
    /// them is written.
    @Test(arguments: [
        ("name{\"other\"} 1\n", ExpositionFormat.text, "two_metric_names"),
        ("{\"a\",\"b\"} 1\n", .text, "two_metric_names"),
        ("{\"\"} 1\n", .text, "empty_name"),
        ("m{\"\"=\"v\"} 1\n", .text, "empty_name"),
        ("{a=\"b\"} 1\n", .text, "missing_metric_name"),
        ("# TYPE \"\" gauge\n", .text, "empty_name"),
        ("{\"my.metric\",} 1\n# EOF\n", .openMetrics, "bad_label_name"),
        ("{ \"my.metric\"} 1\n# EOF\n", .openMetrics, "bad_label_name"),
        ("m 1 # {\"x.y\"} 1\n# EOF\n", .openMetrics, "bad_label_name"),
    ])
    func badlyNamedLinesAreRejected(_ input: String, _ format: ExpositionFormat, _ reason: String) {
        let (output, report) = FilterHarness.run(input, format: format, names: .allowUTF8)
        #expect(output == (format == .openMetrics ? "# EOF\n" : ""), "\(input)")
        #expect(report.linesRejected == [reason: 1], "\(input): \(report.linesRejected)")
    }

    /// Two label names that one scheme makes one: the series cannot be written to that
    /// scraper, and is dropped and counted; a scraper that takes UTF-8 gets it.
    @Test func labelNamesThatClashWhenEscapedDropTheSeries() {
        let input = "m{\"a.b\"=\"1\",a_b=\"2\"} 1\nn 2\n"
        let (escaped, report) = FilterHarness.run(input, names: .underscores)
        #expect(escaped == "n 2\n")
        #expect(report.seriesDropped == ["escaped_name_clash": 1])
        let (utf8, _) = FilterHarness.run(input, names: .allowUTF8)
        #expect(utf8 == "m{\"a.b\"=\"1\",a_b=\"2\"} 1\nn 2\n")
    }

    /// A relabel rule that makes a UTF-8 name (Prometheus 3 semantics allow it): kept
    /// for a scraper that takes UTF-8, dropped as `invalid_name` for one that does not
    /// (its validation would fail the whole scrape on it).
    @Test func aRuleThatMakesAUTF8NameIsHeldToTheScrapersValidation() throws {
        let rule = try RelabelRule(.init(action: "replace", sourceLabels: ["a"], targetLabel: "x.y", replacement: "$1"),
                                   semantics: .prometheus3)
        let policy = FilterPolicy(relabelRules: [rule])
        let (utf8, _) = FilterHarness.run("m{a=\"v\"} 1\n", policy, names: .allowUTF8)
        #expect(utf8 == "m{a=\"v\",\"x.y\"=\"v\"} 1\n")
        let (legacy, report) = FilterHarness.run("m{a=\"v\"} 1\n", policy, names: .underscores)
        #expect(legacy.isEmpty)
        #expect(report.seriesDropped == ["invalid_name": 1])
    }
}
