#!/usr/bin/env python3
"""Differential test of `metric_relabel_configs`: scrapeguard's relabeling against a
real Prometheus (Debian's 2.42: `prometheus` and `promtool` on PATH) on generated
rules and one generated exposition. Deterministic for a given --seed.

For each of --cases cases (1-4 random rules over all eleven actions, with random
fields and regexes from a grammar of RE2 syntax, sometimes with constructs Go's
regexp refuses):

  refusal   `promtool check config` on a scrape config holding the rules, and
            `scrapeguard filter --config.file=...` on a scrapeguard.yml holding
            them: both must accept or both refuse.
  matching  for the cases both accept, ONE Prometheus (loopback, temporary TSDB)
            scrapes the same body once per case (job case_<i>) every second; each
            job's rules end with `{target_label: sg_case, replacement: "<i>"}`. The
            filter reads the same body with job="case_<i>" and
            instance="127.0.0.1:<port>" on every series (the label set Prometheus's
            metric relabeling sees) and the same extra rule. The series Prometheus
            stored for case i (name + sorted labels, empty values left out) must be
            the series the filter wrote, and Prometheus's
            scrape_samples_post_metric_relabeling must equal the filter's samples
            out plus the duplicates it dropped. When Prometheus failed the scrape
            as a whole (a series without __name__ or with an invalid name), the
            filter must have dropped at least one series for that reason
            (missing_metric_name / invalid_name in its report) instead; such a case
            is counted as a scrape failure, not compared further.

Usage:
  e2e/relabel_differential.py [--cases N] [--seed S] [--only I,J,...] [-j N]
                              [--verbose] [--keep]

  --cases N         number of cases (default 300); case i depends only on the
                    seed and i, so --only reproduces a case from a larger run
  --seed S          (default 1)
  --only I,J        run only these case numbers (of the --cases generated)
  -j N              promtool / filter processes at once (default 3)
  --verbose         one line per case
  --keep            keep the work folder (configs, bodies, outputs, Prometheus log)
  --scrape-interval Prometheus's scrape interval and timeout (default 1s)

Notes: the filter's output is read with prometheus_client's text parser, told to
accept label names that start with `__` (it refuses them; Prometheus stores them).
No regex holds `(?<name>...)`: Go 1.22 syntax, which Debian's Prometheus (Go 1.19)
refuses. The instance label carries the body server's random port, so a rule that
reads `instance` may hash or match differently from one run to the next (the same
on both sides).

Environment: SCRAPEGUARD_BIN (default .build/debug/scrapeguard), PROMETHEUS,
PROMTOOL. Needs prometheus_client (.venv-test: make test-deps).
Prints `relabel differential: N passed, M failed` and, on the next line,
`(K refused by both, S scrape failures in Prometheus)`; exits 1 on any mismatch,
2 when the test could not run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

try:
    import prometheus_client.parser as client_parser
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:  # pragma: no cover
    print(f"relabel differential: {e} (run with .venv-test/bin/python; make test-deps)", file=sys.stderr)
    sys.exit(2)


def _label_name_as_prometheus_reads_it(name: str) -> None:
    """prometheus_client's parser refuses label names that start with `__` (reserved
    for its own metrics), which Prometheus stores from a scrape like any other (a rule
    may well write `__tmp`). The parser still checks the name's syntax itself."""
    if not name:
        raise ValueError("empty label name")


if hasattr(client_parser, "_validate_labelname"):
    client_parser._validate_labelname = _label_name_as_prometheus_reads_it

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, ".."))
SCRAPEGUARD = os.environ.get("SCRAPEGUARD_BIN", os.path.join(REPO, ".build", "debug", "scrapeguard"))
PROMETHEUS = os.environ.get("PROMETHEUS", "prometheus")
PROMTOOL = os.environ.get("PROMTOOL", "promtool")

CASE_LABEL = "sg_case"
SCRAPES_NEEDED = 2
SCRAPE_WAIT = 60.0  # seconds, for every job to have been scraped SCRAPES_NEEDED times
PROCESS_TIMEOUT = 30.0  # one promtool or filter run

# =========================================================================== body

METRICS = {
    # name: label names its series may carry
    "http_requests_total": ["path", "method", "code"],
    "app_users": ["user", "a", "method"],
    "ab_gauge": ["a", "b"],
    "queue_len": ["a", "b", "path", "code"],
    "x": ["a", "user"],
}
LABEL_NAMES = ["path", "method", "code", "user", "a", "b"]

VALUES = {
    "path": ["/", "/api/v1/users", "/a/b/c", "/x.y", "/é/ſ", "/home", "/api/v2/items/42"],
    "method": ["GET", "post", "Put", "DELETE", "get"],
    "code": ["200", "404", "500", "5xx", "007", "2"],
    "user": ["alice@example.com", "bob.smith@x.y", "K@kelvin.test", "Σίσυφος", "ſam", "straße",
             "İstanbul", "ǅemal", "o'brien"],
    "a": ["a", "b", "ab", "ba", "aab", "abab", "xyz", "xy", "yx", "aaaa", "x.y", "é", "ſ", "\u212a",
          "Σ", "ς", "σΣς", "Kk", "ABC", "aBc", "0", "42", "3.14"],
    "b": ["a", "b", "bb", "xyxy", "yyy", "ß", "SS", "ǅ", "a b", "line1\nline2", "a\nb", "a\tb",
          "back\\slash", 'q"uote', "k\u212aK", "ſS", "", "0x1F", "-1"],
}


def escape_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def make_series(seed: int) -> list[tuple[str, list[tuple[str, str]], str]]:
    """~20-40 distinct series: (metric name, labels in exposition order, value)."""
    rng = random.Random(f"{seed}:body")
    target = rng.randint(20, 40)
    series = []
    seen = set()
    names = list(METRICS)
    attempts = 0
    while len(series) < target and attempts < 2000:
        attempts += 1
        name = rng.choice(names)
        labels = []
        for label in METRICS[name]:
            if rng.random() < 0.75:
                pool = VALUES[label] if rng.random() < 0.8 else VALUES[rng.choice(["a", "b"])]
                labels.append((label, rng.choice(pool)))
        rng.shuffle(labels)
        key = (name, tuple(sorted((k, v) for k, v in labels if v != "")))
        if key in seen:
            continue
        seen.add(key)
        value = str(rng.randint(0, 1000)) if rng.random() < 0.8 else f"{rng.randint(0, 999)}.{rng.randint(0, 99)}"
        series.append((name, labels, value))
    # A few series always there: escaped newlines, a tab, no labels at all.
    for name, labels in [("ab_gauge", [("a", "x.y"), ("b", "line1\nline2")]), ("ab_gauge", [("b", "a\nb")]),
                         ("x", [("a", "a\tb")]), ("x", []), ("app_users", [("user", "alice@example.com")])]:
        key = (name, tuple(sorted((k, v) for k, v in labels if v != "")))
        if key not in seen:
            seen.add(key)
            series.append((name, labels, str(rng.randint(0, 1000))))
    # Exposition grouped by metric name (text format, no TYPE: every family untyped).
    order = {n: i for i, n in enumerate(names)}
    series.sort(key=lambda s: order[s[0]])
    return series


def render_body(series, extra: list[tuple[str, str]] | None = None) -> bytes:
    lines = []
    for name, labels, value in series:
        all_labels = list(labels) + list(extra or [])
        if all_labels:
            inner = ",".join(f'{k}="{escape_value(v)}"' for k, v in all_labels)
            lines.append(f"{name}{{{inner}}} {value}")
        else:
            lines.append(f"{name} {value}")
    return ("\n".join(lines) + "\n").encode("utf-8")


# =========================================================================== regexes

META = set("\\.+*?()|[]{}^$")
LIT_CHARS = list("abxyk01_-/@ ") + ["a", "b", "x", "e", "s", "S", "K", "é", "ſ", "\u212a", "Σ", "ς", "σ", "."]
NAME_CHARS = list("abcdehjmnopstu_") + ["__", "ab", "path", "code", "job", "user", "name"]
CLASSES = ["[a-c]", "[^x]", "[[:alpha:]]", "[[:upper:]]", "[[:^alpha:]]", "[^[:digit:]]", "[ab]", "[0-9]",
           "[^a-z]", "[\\d.]", "[é-ſ]", "[Kk]", "[σς]", "[.-/]", "[\\x41-\\x5a]", "[\\pL\\d]", "[^\\n]",
           "[a-z_]", "[[:word:]]", "[\\w@.]", "[^/]"]
PERL = ["\\d", "\\w", "\\s", "\\D", "\\W", "\\S"]
UPROPS = ["\\pL", "\\p{Greek}", "\\PL", "\\p{Lu}", "\\p{Ll}", "\\pN", "\\p{Latin}"]
ESCAPES = ["\\.", "\\x41", "\\x{e9}", "\\141", "\\v", "\\t", "\\n", "\\Q.*\\E", "\\Qa.b\\E", "\\-", "\\/",
           "\\x61", "\\x{212a}", "\\0", "\\a", "\\f", "\\@"]
ANCHORS = ["^", "$", "\\A", "\\z", "\\b", "\\B"]
FLAGS = ["(?i)", "(?s)", "(?m)", "(?U)", "(?is)", "(?-s)"]
GROUP_NAMES = ["n", "name", "g1", "_x", "n", "name"]
# Constructs Go's regexp (Prometheus) refuses; PCRE2 accepts some of them.
REFUSED = ["\\C", "\\Z", "(?=a)", "(?<=a)", "(?!a)", "(?P=n)", "(*ACCEPT)", "a**", "a{1001}", "\\1", "(?x)",
           "(?#c)", "(", ")", "[z-a]", "\\8", "\\e", "\\cA", "\\h", "(?|a)", "a++", "(?>a)", "\\K",
           "a{2}{3}"]


def lit(c: str) -> str:
    return "\\" + c if c in META else c


def quantifier(rng: random.Random) -> str:
    q = rng.choice(["*", "+", "?", "*", "+", "{n}", "{n,}", "{n,m}"])
    if q == "{n}":
        q = f"{{{rng.randint(0, 3)}}}"
    elif q == "{n,}":
        q = f"{{{rng.randint(0, 2)},}}"
    elif q == "{n,m}":
        n = rng.randint(0, 2)
        q = f"{{{n},{n + rng.randint(0, 2)}}}"
    if rng.random() < 0.25:
        q += "?"
    return q


def atom(rng: random.Random, names: bool) -> str:
    kind = rng.choices(["lit", "dot", "class", "perl", "uprop", "esc", "anchor"], [6, 2, 2, 2, 1, 1.2, 0.6])[0]
    if kind == "lit":
        pool = NAME_CHARS if names else LIT_CHARS
        return "".join(lit(c) if len(c) == 1 else c for c in (rng.choice(pool) for _ in range(rng.randint(1, 2))))
    if kind == "dot":
        return "."
    if kind == "class":
        if rng.random() < 0.4:
            chars = rng.sample(["a", "b", "x", "é", "K", "ſ", "_", "1", "."], rng.randint(1, 3))
            return "[" + ("^" if rng.random() < 0.3 else "") + "".join(chars) + "]"
        return rng.choice(CLASSES)
    if kind == "perl":
        return rng.choice(PERL)
    if kind == "uprop":
        return rng.choice(UPROPS)
    if kind == "esc":
        return rng.choice(ESCAPES)
    return rng.choice(ANCHORS)


def random_regex(rng: random.Random, depth: int = 0, names: bool = False) -> str:
    """A regex from the grammar; nesting depth at most 3."""
    if depth >= 3:
        a = atom(rng, names)
        return a + (quantifier(rng) if rng.random() < 0.3 and a not in ANCHORS else "")
    kind = rng.choices(
        ["atom", "concat", "group", "ncgroup", "named", "flaggroup", "flagprefix", "alt", "quant"],
        [3, 4, 1.5, 1, 1.2, 0.8, 0.8, 1.2, 2],
    )[0]
    if kind == "atom":
        return atom(rng, names)
    if kind == "concat":
        return "".join(random_regex(rng, depth + 1, names) for _ in range(rng.randint(2, 3)))
    if kind == "group":
        return "(" + random_regex(rng, depth + 1, names) + ")"
    if kind == "ncgroup":
        return "(?:" + random_regex(rng, depth + 1, names) + ")"
    if kind == "named":
        return f"(?P<{rng.choice(GROUP_NAMES)}>" + random_regex(rng, depth + 1, names) + ")"
    if kind == "flaggroup":
        return "(?" + rng.choice(["i", "s", "m", "U", "i", "-i", "is"]) + ":" + random_regex(rng, depth + 1, names) + ")"
    if kind == "flagprefix":
        return rng.choice(FLAGS) + random_regex(rng, depth + 1, names)
    if kind == "alt":
        return random_regex(rng, depth + 1, names) + "|" + random_regex(rng, depth + 1, names)
    # quant: an atom or a group, quantified
    inner = atom(rng, names) if rng.random() < 0.6 else "(" + random_regex(rng, depth + 1, names) + ")"
    if inner in ANCHORS:
        inner = "(?:" + inner + "a)"
    if len(inner) > 1 and not inner.startswith(("(", "[", "\\")):
        inner = "(?:" + inner + ")"
    return inner + quantifier(rng)


def char_pattern(rng: random.Random, c: str) -> str:
    """Something that matches the character c (most of the time)."""
    options = [lit(c)] * 3 + ["."]
    if c.isascii() and (c.isalnum() or c == "_"):
        options.append("\\w")
    if c.isascii() and c.isdigit():
        options += ["\\d", "[0-9]"]
    if c.isalpha():
        options += ["\\pL", "[[:alpha:]]" if c.isascii() else "\\p{L}"]
        if c != c.swapcase() and len(c.swapcase()) == 1:
            options.append("(?i:" + lit(c.swapcase()) + ")")
    if c == "\n":
        options = ["\\n", "\\s", "(?s:.)", "\\v", "\\v", "\\x0a", "\\12", "\\012", "[^a]"]
    if c == "\t":
        options = ["\\t", "\\s", "\\x09", "\\v", "."]
    if ord(c) < 128 and c.isprintable() and rng.random() < 0.06:
        options.append("\\x{:02x}".format(ord(c)))
        options.append("\\{:03o}".format(ord(c)))
    if ord(c) >= 128:
        options.append("\\x{%x}" % ord(c))
    return rng.choice(options)


def derived_piece(rng: random.Random, value: str) -> str:
    """A pattern built from a real value, so that it has a chance to match it."""
    if value == "":
        return rng.choice(["", "(.*)", "()", ".*", "x?"])
    roll = rng.random()
    if roll < 0.12:
        return rng.choice(["(.*)", ".*", ".+", "(.+)", "(?s:.*)", "(.*?)"])
    # Cut the value in up to three runs; each run gets a treatment.
    cuts = sorted(rng.sample(range(1, len(value)), min(len(value) - 1, rng.randint(0, 2)))) if len(value) > 1 else []
    runs = [value[i:j] for i, j in zip([0] + cuts, cuts + [len(value)])]
    out = []
    for run in runs:
        t = rng.choices(["lit", "chars", "wild", "class+"], [3, 3, 2, 1])[0]
        if t == "lit":
            p = "".join(lit(c) for c in run)
        elif t == "chars":
            p = "".join(char_pattern(rng, c) for c in run)
        elif t == "wild":
            p = rng.choice([".*", ".+", ".*?", "(?s:.*)", ".{%d}" % len(run), "[^/]*", "\\S+", "\\w*"])
        else:
            if all(c.isascii() and c.isdigit() for c in run):
                p = rng.choice(["\\d+", "[0-9]*", "\\d{%d}" % len(run)])
            elif all(c.isascii() and c.isalpha() for c in run):
                p = rng.choice(["[a-z]+", "[[:alpha:]]+", "(?i)[a-z]+", "\\w+", "[A-Za-z]*"])
            else:
                p = rng.choice(["\\pL+", "\\S*", ".+", "[^a]+"])
        g = rng.random()
        if g < 0.3:
            p = "(" + p + ")"
        elif g < 0.45:
            p = f"(?P<{rng.choice(GROUP_NAMES)}>" + p + ")"
        elif g < 0.5:
            p = "(?:" + p + ")"
        out.append(p)
    return "".join(out)


def with_refused(rng: random.Random, regex: str) -> str:
    bad = rng.choice(REFUSED)
    pos = rng.choice([0, len(regex)])
    return regex[:pos] + bad + regex[pos:]


# =========================================================================== rules

SOURCE_POOL = ["__name__", "path", "method", "code", "user", "a", "b", "job", "zz", "a", "b"]
TARGET_POOL = ["a", "b", "new", "__name__", "__tmp", "c", "user", "path", "job", "instance", "code", "x_y"]
TARGET_TEMPLATES = ["$1", "${1}", "${name}", "x_$1", "$1_y", "${n}x", "$2", "l_${1}_${2}", "$name", "${g1}",
                    "__$1"]
BAD_TARGETS = ["1x", "a-b", "$", "é", "a b", "${", ""]
REPLACEMENTS = ["$1", "${1}", "${name}", "$$", "$$1", "lit", "x$1y", "$1$2", "${1}_${2}", "$name", "$1x", "é$1",
                "", "$", "${", "${n}", "$0", "${0}", "a_b", "Ab", "$2", "${g1}-${_x}", "$1\n"]
MAP_REPLACEMENTS = ["$1", "${1}", "x_$1", "${1}_copy", "new_${name}", "__tmp_$1", "lbl", "$2", "${n}", "__name__",
                    "$1$2", "a", "1x", "a-b", "$$"]
ACTIONS = ["replace", "keep", "drop", "keepequal", "dropequal", "hashmod", "labelmap", "labeldrop", "labelkeep",
           "lowercase", "uppercase"]
FIELD_ORDER = ["source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action"]


class Generator:
    def __init__(self, seed: int, series):
        self.seed = seed
        self.series = series

    def sources(self, rng: random.Random) -> list[str]:
        n = rng.choices([1, 2, 3], [6, 3, 1])[0]
        out = [rng.choice(SOURCE_POOL) for _ in range(n)]
        if rng.random() < 0.06:
            out.append("instance")
        if rng.random() < 0.01:
            out[rng.randrange(len(out))] = rng.choice(["1a", "a-b", "é"])
        return out

    def value_regex(self, rng: random.Random, case: int, sources: list[str], separator: str) -> str:
        """A regex over the joined source values: derived from a series or random."""
        if rng.random() < 0.6:
            name, labels, _ = rng.choice(self.series)
            d = dict(labels)
            pieces = []
            for s in sources:
                if s == "__name__":
                    v = name
                elif s == "job":
                    v = f"case_{case}"
                elif s == "instance":
                    pieces.append(rng.choice(["127\\.0\\.0\\.1:(\\d+)", ".*", "[^;]*", "(?P<port>.*)"]))
                    continue
                else:
                    v = d.get(s, "")
                pieces.append(derived_piece(rng, v))
            regex = "".join(lit(c) for c in separator).join(pieces) if rng.random() < 0.85 else \
                (";" if separator == ";" else "").join(pieces)
            if rng.random() < 0.15:
                regex = regex + "|" + random_regex(rng, 1)
            if rng.random() < 0.1:
                regex = rng.choice(["(?i)", "(?s)", "(?U)", "(?m)"]) + regex
        else:
            regex = random_regex(rng)
            if rng.random() < 0.35:
                regex = rng.choice(["(.*)", ".*", "(?s:.*)"]) + regex + rng.choice(["(.*)", ".*", "(.*?)"])
        return regex

    def name_regex(self, rng: random.Random) -> str:
        """A regex over label names (labelmap, labeldrop, labelkeep)."""
        if rng.random() < 0.55:
            name = rng.choice(LABEL_NAMES + ["__name__", "job", "instance", "code", "a", "b"])
            regex = derived_piece(rng, name)
            if rng.random() < 0.3:
                regex += "|" + derived_piece(rng, rng.choice(LABEL_NAMES))
        else:
            regex = random_regex(rng, names=True)
            if rng.random() < 0.3:
                regex = "(.*)" + regex + "(.*)"
        return regex

    def rule(self, rng: random.Random, case: int) -> dict:
        action = rng.choice(ACTIONS)
        r: dict = {}
        sep = ";"
        if action in ("replace", "keep", "drop", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"):
            if not (action == "replace" and rng.random() < 0.08):
                r["source_labels"] = self.sources(rng)
            if rng.random() < (0.03 if action in ("keepequal", "dropequal") else 0.2):
                sep = rng.choice([";", "", "/", "é", ",", "--"])
                r["separator"] = sep
        srcs = r.get("source_labels", [])
        if action in ("replace", "keep", "drop"):
            if action != "replace" or rng.random() < 0.8:
                r["regex"] = self.value_regex(rng, case, srcs, sep)
        elif action in ("labelmap", "labeldrop", "labelkeep"):
            r["regex"] = self.name_regex(rng)
            if action == "labelkeep" and rng.random() < 0.6:
                r["regex"] = "(?:" + r["regex"] + ")|__name__|job|instance"
        elif action in ("hashmod", "lowercase", "uppercase") and rng.random() < 0.1:
            r["regex"] = self.value_regex(rng, case, srcs, sep)
        elif action in ("keepequal", "dropequal") and rng.random() < 0.04:
            r["regex"] = rng.choice(["(.*)", "a", ".*"])

        if action == "replace":
            roll = rng.random()
            if roll < 0.55:
                r["target_label"] = rng.choice(TARGET_POOL)
            elif roll < 0.95:
                r["target_label"] = rng.choice(TARGET_TEMPLATES)
            else:
                r["target_label"] = rng.choice(BAD_TARGETS)
            if rng.random() < 0.75:
                r["replacement"] = rng.choice(REPLACEMENTS)
        elif action in ("hashmod", "lowercase", "uppercase", "keepequal", "dropequal"):
            roll = rng.random()
            if roll < 0.9:
                r["target_label"] = rng.choice(TARGET_POOL)
            elif roll < 0.95:
                r["target_label"] = rng.choice(TARGET_TEMPLATES)
            elif roll < 0.98:
                r["target_label"] = rng.choice(BAD_TARGETS)
            if action == "hashmod":
                roll = rng.random()
                if roll < 0.93:
                    r["modulus"] = rng.randint(1, 8)
                elif roll < 0.97:
                    r["modulus"] = 0
                elif roll < 0.99:
                    r["modulus"] = -1
                if rng.random() < 0.1:
                    r["replacement"] = rng.choice(REPLACEMENTS)
            elif rng.random() < 0.05:
                r["replacement"] = rng.choice(["x", "$1", "${1}"])
        elif action == "labelmap":
            if rng.random() < 0.7:
                r["replacement"] = rng.choice(MAP_REPLACEMENTS)
        elif action in ("labeldrop", "labelkeep") and rng.random() < 0.04:
            extra = rng.choice(["source_labels", "target_label", "separator", "replacement", "modulus"])
            r[extra] = {"source_labels": ["a"], "target_label": "a", "separator": ",", "replacement": "x",
                        "modulus": 2}[extra]
        if action in ("keep", "drop", "labelmap", "keepequal", "dropequal") and rng.random() < 0.03:
            r["modulus"] = rng.randint(1, 3)

        if not (action == "replace" and rng.random() < 0.3):
            a = action
            if rng.random() < 0.05:
                a = a.capitalize() if rng.random() < 0.5 else a.upper()
            r["action"] = a
        if rng.random() < 0.005:
            r["action"] = rng.choice(["delete", "keep_if_equal", ""])
        return r

    def case(self, i: int) -> list[dict]:
        rng = random.Random(f"{self.seed}:case:{i}")
        rules = [self.rule(rng, i) for _ in range(rng.choices([1, 2, 3, 4], [3, 3, 2, 1])[0])]
        # One case in about seven has a construct Go's regexp refuses in one regex.
        with_regex = [r for r in rules if "regex" in r]
        if with_regex and rng.random() < 0.17:
            r = rng.choice(with_regex)
            r["regex"] = with_refused(rng, r["regex"])
        return rules


def yq(s: str) -> str:
    """A double-quoted YAML scalar (a JSON string is one)."""
    return json.dumps(s, ensure_ascii=False)


def render_rules(rules: list[dict], case: int, indent: int) -> str:
    pad = " " * indent
    lines = [f"{pad}metric_relabel_configs:"]
    for r in rules + [{"target_label": CASE_LABEL, "replacement": str(case)}]:
        first = True
        for key in FIELD_ORDER:
            if key not in r:
                continue
            v = r[key]
            if key == "source_labels":
                text = "[" + ", ".join(yq(x) for x in v) + "]"
            elif key == "modulus":
                text = str(v)
            else:
                text = yq(v)
            lines.append(f"{pad}  {'- ' if first else '  '}{key}: {text}")
            first = False
    return "\n".join(lines) + "\n"


def rules_text(rules: list[dict]) -> str:
    """The case's own rules (without the sg_case rule), for reports."""
    return render_rules(rules, 0, 0).split(f"- target_label: \"{CASE_LABEL}\"")[0].rstrip() + "\n"


# =========================================================================== processes

class Body(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, body: bytes):
        super().__init__(("127.0.0.1", 0), Handler)
        self.body = body

    def handle_error(self, request, client_address):
        # Prometheus hanging up (it is being stopped) is no error of the test.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, path: str, params: dict | None = None, timeout: float = 10.0):
    data = urllib.parse.urlencode(params or {}, doseq=True).encode()
    req = urllib.request.Request(base + path, data=data, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        doc = json.load(r)
    if doc.get("status") != "success":
        raise RuntimeError(f"{path}: {doc}")
    return doc["data"]


PARSE_PREFIX = re.compile(r"parsing YAML file [^:]*: ")


def promtool_check(work: str, case: int, rules: list[dict]) -> tuple[bool, str]:
    path = os.path.join(work, f"case_{case}.prometheus.yml")
    with open(path, "w", encoding="utf-8") as f:
        f.write("scrape_configs:\n"
                f"  - job_name: case_{case}\n"
                "    static_configs:\n"
                "      - targets: ['127.0.0.1:9']\n" + render_rules(rules, case, 4))
    p = subprocess.run([PROMTOOL, "check", "config", "--syntax-only", path], capture_output=True, text=True,
                       timeout=PROCESS_TIMEOUT, stdin=subprocess.DEVNULL)
    text = (p.stdout + p.stderr).strip()
    if p.returncode == 0:
        return True, ""
    msg = text.splitlines()[-1].strip() if text else f"exit {p.returncode}"
    for line in text.splitlines():
        m = PARSE_PREFIX.search(line)
        if m:
            msg = line[m.end():].strip()
            break
    return False, msg


def run_filter(work: str, case: int, rules: list[dict], body: bytes) -> dict:
    path = os.path.join(work, f"case_{case}.scrapeguard.yml")
    with open(path, "w", encoding="utf-8") as f:
        # The Prometheus here is 2.42: its semantics, not the default (3.x).
        f.write("relabel_semantics: prometheus2\n")
        f.write(render_rules(rules, case, 0))
    # Three passes through one series memo (cold, warm, warm again): the filter exits 1
    # if a warm pass differs from the cold one; what is compared is the last pass.
    p = subprocess.run([SCRAPEGUARD, "filter", f"--config.file={path}", "--format=text", "--repeat=3"], input=body,
                       capture_output=True, timeout=PROCESS_TIMEOUT)
    out = p.stdout.decode("utf-8", errors="replace")
    err = p.stderr.decode("utf-8", errors="replace")
    with open(os.path.join(work, f"case_{case}.filter.out"), "w", encoding="utf-8") as f:
        f.write(out)
    with open(os.path.join(work, f"case_{case}.filter.err"), "w", encoding="utf-8") as f:
        f.write(err)
    if p.returncode < 0:
        return {"state": "crash", "message": f"killed by signal {-p.returncode}: {err.strip()[-500:]}"}
    if p.returncode != 0:
        # Refused configuration: `filter: <error>` before anything is read.
        if "samples in:" not in err:
            return {"state": "refused", "message": err.strip().removeprefix("filter: ")}
        return {"state": "error", "message": f"exit {p.returncode}: {err.strip()[-500:]}"}
    return {"state": "accepted", "stdout": out, "stderr": err}


REPORT = re.compile(r"^samples in: (\d+), out: (\d+), rewritten: (\d+)$", re.M)
DROPPED = re.compile(r"^dropped (\d+) series of (.*): (\S+)$", re.M)


def canonical(name: str, labels: dict) -> str:
    body = ",".join(f'{k}="{escape_value(labels[k])}"' for k in sorted(labels) if labels[k] != "")
    return f"{name}{{{body}}}"


def parse_filter_output(text: str) -> list[str]:
    """Canonical series of the filter's output, in output order (duplicates kept)."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = {k: v for k, v in s.labels.items() if k != CASE_LABEL}
            out.append(canonical(s.name, labels))
    return out


def filter_counts(stderr: str) -> tuple[int, dict]:
    m = REPORT.search(stderr)
    samples_out = int(m.group(2)) if m else -1
    reasons: dict = {}
    for d in DROPPED.finditer(stderr):
        reasons[d.group(3)] = reasons.get(d.group(3), 0) + int(d.group(1))
    return samples_out, reasons


class PrometheusServer:
    def __init__(self, work: str, config: str):
        self.work = work
        self.config_path = os.path.join(work, "prometheus.yml")
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(config)
        self.proc = None
        self.log_path = os.path.join(work, "prometheus.log")
        self.base = ""

    def start(self, timeout: float = 30.0):
        for _ in range(3):
            port = free_port()
            self.base = f"http://127.0.0.1:{port}"
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.config_path}",
                 f"--storage.tsdb.path={os.path.join(self.work, 'tsdb')}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                        if r.status == 200:
                            return
                except OSError:
                    pass
                time.sleep(0.2)
            if self.proc.poll() is None:
                self.stop()
                raise RuntimeError(f"prometheus not ready in {timeout:.0f} s")
            with open(self.log_path, errors="replace") as f:
                tail = f.read()[-1500:]
            if "address already in use" not in tail:
                raise RuntimeError(f"prometheus exited ({self.proc.returncode}): {tail}")
        raise RuntimeError("prometheus: no free port after 3 tries")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


RELABEL_ERROR = re.compile(r"metric name|label name|label set|invalid", re.I)


def wait_for_scrapes(prom: PrometheusServer, jobs: list[str], timeout: float) -> dict:
    """Until every job has SCRAPES_NEEDED scrapes, its last one up or failed for a
    reason of its series (not a timeout). Returns job -> (health, lastError)."""
    deadline = time.monotonic() + timeout
    state: dict = {}
    while True:
        if prom.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited ({prom.proc.returncode}); see {prom.log_path}")
        counts = {}
        try:
            res = api(prom.base, "/api/v1/query", {"query": 'count_over_time(up{job=~"case_.*"}[1h])'})
            counts = {item["metric"]["job"]: int(float(item["value"][1])) for item in res["result"]}
            with urllib.request.urlopen(prom.base + "/api/v1/targets?state=active", timeout=10) as r:
                targets = json.load(r)["data"]["activeTargets"]
            state = {t["scrapePool"]: (t.get("health", ""), t.get("lastError", "")) for t in targets}
        except (OSError, RuntimeError, ValueError, KeyError):
            pass
        pending = [j for j in jobs
                   if counts.get(j, 0) < SCRAPES_NEEDED or j not in state
                   or (state[j][0] != "up" and not RELABEL_ERROR.search(state[j][1]))]
        if not pending:
            return state
        if time.monotonic() > deadline:
            for j in pending:
                h, e = state.get(j, ("unknown", ""))
                state[j] = (h, f"not scraped {SCRAPES_NEEDED} times in {timeout:.0f} s "
                               f"({counts.get(j, 0)} scrapes, health {h}, last error {e!r})")
            return state
        time.sleep(0.5)


# =========================================================================== main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated case numbers")
    ap.add_argument("-j", "--jobs", type=int, default=3)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--scrape-interval", default="1s")
    args = ap.parse_args()
    # SIGTERM as an exit, so that the finally below stops Prometheus.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    for tool in (PROMETHEUS, PROMTOOL):
        if shutil.which(tool) is None:
            print(f"relabel differential: {tool} not found (Debian: apt-get install prometheus)", file=sys.stderr)
            return 2
    if not (os.path.isfile(SCRAPEGUARD) and os.access(SCRAPEGUARD, os.X_OK)):
        print(f"relabel differential: SCRAPEGUARD_BIN={SCRAPEGUARD} is not an executable", file=sys.stderr)
        return 2

    t0 = time.monotonic()
    series = make_series(args.seed)
    gen = Generator(args.seed, series)
    ids = list(range(args.cases))
    if args.only:
        ids = [int(x) for x in args.only.split(",") if x.strip()]
    cases = {i: gen.case(i) for i in ids}
    body = render_body(series)

    work = tempfile.mkdtemp(prefix="relabel-differential-")
    with open(os.path.join(work, "body.txt"), "wb") as f:
        f.write(body)
    server = Body(body)
    server_thread = threading.Thread(target=server.serve_forever, daemon=True)
    server_thread.start()
    instance = f"127.0.0.1:{server.server_address[1]}"
    prom = None
    both: list[int] = []
    failures: list[tuple[int, str]] = []
    passed = 0
    refused_both = 0
    scrape_failures = 0
    try:
        workers = max(1, args.jobs)
        # ---- refusals, Prometheus's side
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
            checks = dict(zip(ids, ex.map(lambda i: promtool_check(work, i, cases[i]), ids)))
        accepted = [i for i in ids if checks[i][0]]

        # ---- one Prometheus for every case promtool accepts, scraping while the filter runs
        if accepted:
            config = ("global:\n"
                      f"  scrape_interval: {args.scrape_interval}\n"
                      f"  scrape_timeout: {args.scrape_interval}\n"
                      "scrape_configs:\n")
            for i in accepted:
                config += (f"  - job_name: case_{i}\n"
                           "    static_configs:\n"
                           f"      - targets: ['{instance}']\n" + render_rules(cases[i], i, 4))
            prom = PrometheusServer(work, config)
            prom.start()

        # ---- the filter on every case
        def filt(i):
            extra = [("job", f"case_{i}"), ("instance", instance)]
            fbody = render_body(series, extra)
            return run_filter(work, i, cases[i], fbody)

        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
            filtered = dict(zip(ids, ex.map(filt, ids)))

        both = [i for i in accepted if filtered[i]["state"] == "accepted"]
        state = {}
        prom_series: dict[int, set] = {i: set() for i in both}
        post_relabel: dict[int, int] = {}
        if both:
            state = wait_for_scrapes(prom, [f"case_{i}" for i in both], SCRAPE_WAIT)
            data = api(prom.base, "/api/v1/series", {"match[]": f'{{{CASE_LABEL}=~".+"}}'}, timeout=30)
            for labels in data:
                i = int(labels.get(CASE_LABEL, "-1"))
                if i not in prom_series:
                    continue
                name = labels.get("__name__", "")
                rest = {k: v for k, v in labels.items() if k not in ("__name__", CASE_LABEL)}
                prom_series[i].add(canonical(name, rest))
            res = api(prom.base, "/api/v1/query",
                      {"query": 'scrape_samples_post_metric_relabeling{job=~"case_.*"}'})
            for item in res["result"]:
                post_relabel[int(item["metric"]["job"].removeprefix("case_"))] = int(float(item["value"][1]))
        if prom is not None:
            prom.stop()

        # ---- compare
        for i in ids:
            p_ok, p_msg = checks[i]
            f = filtered[i]
            problem = None
            note = ""
            if f["state"] in ("crash", "error"):
                problem = f"the filter failed: {f['message']}"
            elif p_ok != (f["state"] == "accepted"):
                problem = ("refusal differs:\n"
                           f"    promtool: {'accepted' if p_ok else 'refused: ' + p_msg}\n"
                           f"    filter:   {'accepted' if f['state'] == 'accepted' else 'refused: ' + f['message']}")
            elif not p_ok:
                refused_both += 1
                note = f"refused by both (promtool: {p_msg} | filter: {f['message']})"
            else:
                health, last_error = state.get(f"case_{i}", ("unknown", "not scraped"))
                samples_out, reasons = filter_counts(f["stderr"])
                try:
                    fseries = parse_filter_output(f["stdout"])
                except Exception as e:  # noqa: BLE001
                    fseries = None
                    problem = f"the filter's output does not parse: {e}"
                if problem:
                    pass
                elif health != "up":
                    if RELABEL_ERROR.search(last_error) and "not scraped" not in last_error:
                        scrape_failures += 1
                        bad = {k: v for k, v in reasons.items() if k in ("missing_metric_name", "invalid_name")}
                        if bad:
                            note = f"scrape failed in Prometheus ({last_error}); the filter dropped {bad}"
                        else:
                            problem = (f"Prometheus failed the scrape ({last_error}) but the filter dropped no "
                                       f"series for a missing or invalid name (its report: {reasons or 'nothing'})")
                    else:
                        problem = f"Prometheus did not scrape the case: {last_error}"
                else:
                    fset = set(fseries)
                    pset = prom_series[i]
                    only_p = sorted(pset - fset)
                    only_f = sorted(fset - pset)
                    dup = reasons.get("duplicate", 0)
                    post = post_relabel.get(i)
                    if only_p or only_f:
                        problem = "series differ:\n" + "".join(
                            f"    only in Prometheus: {s}\n" for s in only_p[:15]) + (
                            f"    ... {len(only_p) - 15} more\n" if len(only_p) > 15 else "") + "".join(
                            f"    only in the filter: {s}\n" for s in only_f[:15]) + (
                            f"    ... {len(only_f) - 15} more\n" if len(only_f) > 15 else "")
                        problem += f"    ({len(pset)} series in Prometheus, {len(fset)} from the filter)"
                    elif post is not None and post != samples_out + dup:
                        problem = (f"sample counts differ: Prometheus kept {post} samples after relabeling, the filter "
                                   f"wrote {samples_out} and dropped {dup} duplicates")
                    else:
                        note = f"{len(pset)} series agree ({post} samples after relabeling)"
            if problem:
                failures.append((i, problem))
                print(f"FAIL  case {i}: {problem}")
                print("    rules:")
                print("".join(f"      {l}\n" for l in rules_text(cases[i]).splitlines()), end="")
                print(f"    reproduce: {sys.argv[0]} --seed {args.seed} --cases {args.cases} --only {i} --verbose")
            else:
                passed += 1
                if args.verbose:
                    print(f"ok    case {i}: {note}")
                    print("".join(f"      {l}\n" for l in rules_text(cases[i]).splitlines()), end="")
    except Exception as e:  # noqa: BLE001
        print(f"relabel differential: could not run: {e}", file=sys.stderr)
        if prom is not None and os.path.exists(prom.log_path):
            with open(prom.log_path, errors="replace") as lf:
                print(lf.read()[-2000:], file=sys.stderr)
        return 2
    finally:
        if prom is not None:
            prom.stop()
        server.shutdown()
        server.server_close()
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(f"seed {args.seed}, {len(ids)} cases, {len(both)} run by Prometheus, {time.monotonic() - t0:.1f} s")
    print(f"relabel differential: {passed} passed, {len(failures)} failed")
    print(f"({refused_both} refused by both, {scrape_failures} scrape failures in Prometheus)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
