import Benchmark
import MetricsFilter

/// Relabel regexes that backtracking engines take exponential time on, as `drop`
/// rules over bodies of 2.5k, 5k and 10k series whose values are distinct and 1 KiB
/// long (so the per-value memo never answers). With RE2 the time per body grows with
/// the number of values, linearly: compare the three sizes of one pattern.
/// (RelabelRegexTests.pathologicalPatternsDecideRight checks the verdicts.)
func regexBenchmarks() {
    let patterns = ["(a+)+$", "(x+x+)+y", "(.*a){20}"]
    for pattern in patterns {
        for count in [2_500, 5_000, 10_000] {
            let body = RegexBodies.exposition(values: count, for: pattern)
            var policy = FilterPolicy()
            do {
                policy.relabelRules = [try RelabelRule(.init(action: "drop", sourceLabels: ["v"], regex: pattern))]
            } catch {
                fatalError("\(pattern): \(error)")
            }
            Benchmark("regex drop \(pattern), \(count) values of 1 KiB") { benchmark in
                for _ in benchmark.scaledIterations {
                    blackHole(Bodies.filter(body, StreamingFilter(policy: policy, format: .text)))
                }
            }
        }
    }
}

enum RegexBodies {
    /// `m{v="…"} 1` lines whose values are each 1 KiB, distinct, and the worst case
    /// for a backtracking engine on `pattern`: a long run that almost matches.
    static func exposition(values count: Int, for pattern: String) -> [UInt8] {
        var text = ""
        text.reserveCapacity(count * 1040)
        for index in 0..<count {
            text += "m{v=\"\(value(index, for: pattern))\"} 1\n"
        }
        return Array(text.utf8)
    }

    static func value(_ index: Int, for pattern: String) -> String {
        let tag = "-\(index)"
        switch pattern {
        case "(x+x+)+y": return String(repeating: "x", count: 1024 - tag.utf8.count) + tag
        case "(.*a){20}": return String(repeating: "a", count: 19) + String(repeating: "x", count: 1005 - tag.utf8.count) + tag
        default: return String(repeating: "a", count: 1024 - tag.utf8.count) + tag
        }
    }
}
