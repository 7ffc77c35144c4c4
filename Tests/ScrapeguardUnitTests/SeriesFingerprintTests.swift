@testable import MetricsFilter
import TestSupport
import Testing

/// `SeriesFingerprint`: what the duplicate check and admission take a series for.
/// The same labels in any order give the same fingerprint; the same bytes split
/// differently between name and value, or between labels, do not; and distinct
/// series of a scrape-like body keep distinct 64-bit halves (the duplicate check
/// keeps only `high`).
@Suite struct SeriesFingerprintTests {
    private func fingerprint(_ name: String, _ labels: [(String, String)]) -> SeriesFingerprint {
        SeriesFingerprint(name: Array(name.utf8),
                          labels: labels.map { Label(name: Array($0.0.utf8), value: Array($0.1.utf8)) })
    }

    @Test func orderDoesNotMatterButBoundariesDo() {
        #expect(fingerprint("m", [("a", "1"), ("b", "2")]) == fingerprint("m", [("b", "2"), ("a", "1")]))
        #expect(fingerprint("m", [("ab", "c")]) != fingerprint("m", [("a", "bc")]))
        #expect(fingerprint("m", [("a", "12345678"), ("b", "9")]) != fingerprint("m", [("a", "1234567"), ("b", "89")]))
        #expect(fingerprint("m", [("a", "x")]) != fingerprint("m", [("a", "x\u{0}")]))
        #expect(fingerprint("m", [("a", "")]) == fingerprint("m", []), "an empty value is no label")
        #expect(fingerprint("m_total", []) != fingerprint("m", [("_total", "")]))
    }

    /// 300,000 series as apps write them: shared prefixes, counters in the values,
    /// lengths around the 8-byte steps; and as many random ones (seed 1).
    @Test func distinctSeriesKeepDistinctHighHalves() {
        var seen = Set<UInt64>()
        var count = 0
        func add(_ fingerprint: SeriesFingerprint) {
            seen.insert(fingerprint.high)
            count += 1
        }
        for index in 0..<150_000 {
            add(fingerprint("app_http_requests_total",
                            [("route", "/api/v1/items/\(index % 500)"), ("session_id", "s\(index)"),
                             ("status", "\(200 + index % 7)")]))
            add(fingerprint("a", [("le", "\(index)"), ("x", String(repeating: "y", count: index % 24))]))
        }
        var random = SplitMix64(seed: 1)
        for _ in 0..<300_000 {
            let length = random.below(20)
            let value = String((0..<length).map { _ in Character(Unicode.Scalar(UInt8(97 + random.below(26)))) })
            add(fingerprint("r", [("v", value), ("w", "\(random.below(1_000_000))")]))
        }
        // Random values repeat (short ones); count the distinct series instead.
        var distinct = Set<[UInt8]>()
        random = SplitMix64(seed: 1)
        for _ in 0..<300_000 {
            let length = random.below(20)
            let value = String((0..<length).map { _ in Character(Unicode.Scalar(UInt8(97 + random.below(26)))) })
            distinct.insert(Array("\(value)|\(random.below(1_000_000))".utf8))
        }
        #expect(seen.count == 300_000 + distinct.count, "\(count) fingerprints")
    }
}
