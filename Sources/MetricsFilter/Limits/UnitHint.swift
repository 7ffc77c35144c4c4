extension SeriesTracker {
    /// What admission found for a key last time, kept by the caller (a remembered
    /// series) to spare the next admission of the key a probe of the table of units:
    /// the unit's number, or that the key was absent when `admissions` was this.
    ///
    /// It is taken only for the key and the tracker it was found for (`check`, 64 bits
    /// of both): a remembered series' unit key depends on the metadata before it, so
    /// the next admission may be for another key, and a memo may meet another tracker
    /// (a test's, or after limits changed). A number is also checked against the
    /// unit's own key before use.
    struct UnitHint: Equatable {
        /// A number when ≥ 0; the admissions count when < -1 (see `absentAfter`).
        private let raw: Int64
        private let check: UInt64

        static let unknown = UnitHint(raw: -1, check: 0)

        private init(raw: Int64, check: UInt64) {
            self.raw = raw
            self.check = check
        }

        private static func check(_ key: UnitKey, _ tracker: UInt64) -> UInt64 {
            (key.high ^ key.low.rotated(29)) ^ (tracker &* 0x9E37_79B9_7F4A_7C15)
        }

        init(key: UnitKey, tracker: UInt64, number: Int) {
            self.init(raw: Int64(number), check: Self.check(key, tracker))
        }

        init(key: UnitKey, tracker: UInt64, absentAfter admissions: UInt64) {
            // Admissions never come near 2^62: one a nanosecond would take 146 years.
            self.init(raw: -2 - Int64(truncatingIfNeeded: admissions & (UInt64.max >> 2)), check: Self.check(key, tracker))
        }

        /// The unit's number, when the hint is one for `key` in `tracker`.
        func number(for key: UnitKey, tracker: UInt64) -> Int? {
            raw >= 0 && check == Self.check(key, tracker) ? Int(raw) : nil
        }

        /// The admissions count when `key` was found absent from `tracker`, when the
        /// hint is one for them.
        func absentAfter(for key: UnitKey, tracker: UInt64) -> UInt64? {
            raw < -1 && check == Self.check(key, tracker) ? UInt64(-2 - raw) : nil
        }
    }
}
