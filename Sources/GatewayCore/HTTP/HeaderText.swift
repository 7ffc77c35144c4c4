extension StringProtocol {
    /// Without the spaces and tabs around it: HTTP's optional whitespace (RFC 9110,
    /// 5.6.3), around header values and the items of their lists.
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
