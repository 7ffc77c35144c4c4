#ifndef SCRAPEGUARD_RE2_H
#define SCRAPEGUARD_RE2_H

// A C face for Google's RE2 (Debian's libre2-dev), so that Swift sees plain C: one
// opaque compiled regex, compiled once and matched from any thread (RE2 objects are
// thread-safe for matching).

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scrapeguard_re2 scrapeguard_re2;

/// Why a compile failed: RE2's error code (its `RE2::ErrorCode` numbering) and the
/// fragment of the pattern it names, cut to fit `argument` (always NUL-terminated);
/// `argument_full_length` is its length before the cut.
typedef struct {
    int code;
    char argument[512];
    size_t argument_length;
    size_t argument_full_length;
} scrapeguard_re2_error;

/// Compiles `pattern` (UTF-8, Perl-like syntax as Go's regexp reads it, leftmost-first
/// matching). `max_memory` bounds the compiled program and its DFA caches (bytes).
/// Returns NULL and fills `error` on failure.
scrapeguard_re2 *scrapeguard_re2_compile(const char *pattern, size_t length, int64_t max_memory,
                                         scrapeguard_re2_error *error);

void scrapeguard_re2_free(scrapeguard_re2 *regex);

/// The number of capturing groups.
int scrapeguard_re2_group_count(const scrapeguard_re2 *regex);

/// Searches `text` from byte `start` on (unanchored: the anchors are part of the
/// pattern; `^` and `\b` still see the whole text, as Go's regexp does). With
/// `group_count` 0 only tells whether it matches. Otherwise fills `ranges` with
/// `group_count` (start, end) byte offset pairs, group 0 being the whole match; -1
/// for a group that took no part. Returns 1 on a match, 0 on none, -1 when memory ran
/// out (RE2 itself never fails a match; only an allocation can).
int scrapeguard_re2_match(const scrapeguard_re2 *regex, const uint8_t *text, size_t length, size_t start,
                          ptrdiff_t *ranges, int group_count);

#ifdef __cplusplus
}
#endif

#endif
