#include "scrapeguard_re2.h"

#include <re2/re2.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

struct scrapeguard_re2 {
    re2::RE2 regex;

    scrapeguard_re2(re2::StringPiece pattern, const re2::RE2::Options &options) : regex(pattern, options) {}
};

static void fill_error(scrapeguard_re2_error *error, int code, const std::string &argument) {
    if (error == nullptr) return;
    error->code = code;
    size_t length = std::min(argument.size(), sizeof(error->argument) - 1);
    std::memcpy(error->argument, argument.data(), length);
    error->argument[length] = 0;
    error->argument_length = length;
    error->argument_full_length = argument.size();
}

// No C++ exception may cross into Swift (it would end the process): every entry point
// catches what RE2 or the standard library can throw, std::bad_alloc above all.

extern "C" scrapeguard_re2 *scrapeguard_re2_compile(const char *pattern, size_t length, int64_t max_memory,
                                                    scrapeguard_re2_error *error) try {
    re2::RE2::Options options;
    options.set_encoding(re2::RE2::Options::EncodingUTF8);
    options.set_posix_syntax(false);   // Perl classes, \b, non-greedy, (?flags): Go's syntax.Perl
    options.set_longest_match(false);  // leftmost-first, as Go's regexp.Compile
    options.set_log_errors(false);
    options.set_max_mem(max_memory);
    scrapeguard_re2 *compiled = new (std::nothrow) scrapeguard_re2(re2::StringPiece(pattern, length), options);
    if (compiled == nullptr) {
        fill_error(error, re2::RE2::ErrorInternal, "out of memory");
        return nullptr;
    }
    if (!compiled->regex.ok()) {
        fill_error(error, compiled->regex.error_code(), compiled->regex.error_arg());
        delete compiled;
        return nullptr;
    }
    return compiled;
} catch (...) {
    fill_error(error, re2::RE2::ErrorInternal, "out of memory");
    return nullptr;
}

extern "C" void scrapeguard_re2_free(scrapeguard_re2 *regex) {
    delete regex;
}

extern "C" int scrapeguard_re2_group_count(const scrapeguard_re2 *regex) {
    return 1 + regex->regex.NumberOfCapturingGroups();
}

extern "C" int scrapeguard_re2_match(const scrapeguard_re2 *regex, const uint8_t *text, size_t length, size_t start,
                                     ptrdiff_t *ranges, int group_count) try {
    if (start > length) return 0;
    // A non-NULL base even for "", so that a group that matched empty (data inside
    // the text) is told apart from one that took no part (data NULL).
    static const char empty[1] = {0};
    const char *base = length == 0 ? empty : reinterpret_cast<const char *>(text);
    re2::StringPiece subject(base, length);
    if (group_count <= 0) {
        return regex->regex.Match(subject, start, length, re2::RE2::UNANCHORED, nullptr, 0) ? 1 : 0;
    }
    re2::StringPiece inline_groups[16];
    std::vector<re2::StringPiece> heap_groups;
    re2::StringPiece *groups = inline_groups;
    if (group_count > 16) {
        heap_groups.resize(static_cast<size_t>(group_count));
        groups = heap_groups.data();
    }
    if (!regex->regex.Match(subject, start, length, re2::RE2::UNANCHORED, groups, group_count)) {
        return 0;
    }
    for (int index = 0; index < group_count; index++) {
        if (groups[index].data() == nullptr) {
            ranges[2 * index] = -1;
            ranges[2 * index + 1] = -1;
        } else {
            ptrdiff_t offset = groups[index].data() - base;
            ranges[2 * index] = offset;
            ranges[2 * index + 1] = offset + static_cast<ptrdiff_t>(groups[index].size());
        }
    }
    return 1;
} catch (...) {
    return -1;
}
