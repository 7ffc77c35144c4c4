/// The scrape's query string, against `upstream.allowed_query_params`: exporters
/// that take `collect[]`, `name[]` or `target`/`module` can be fronted, and nothing
/// else reaches the app. A parameter not on the list is refused (400), never
/// silently dropped: a scrape without the parameter it asked for would look whole.
enum ScrapeQuery {
    /// The query to pass on (nil: none), or the name of the first parameter that is
    /// not allowed. Names are compared percent-decoded (`collect%5B%5D` is `collect[]`).
    static func check(uri: String, allowed: Set<String>) -> Result<String?, Refusal> {
        guard let mark = uri.firstIndex(of: "?") else { return .success(nil) }
        let query = String(uri[uri.index(after: mark)...])
        guard !query.isEmpty else { return .success(nil) }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name = percentDecoded(pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0])
            guard let name, allowed.contains(name) else { return .failure(Refusal()) }
        }
        return .success(query)
    }

    struct Refusal: Error, Equatable {}

    /// `%XX` and `+` decoded; nil when an escape is malformed or the result is not UTF-8.
    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
