#!/usr/bin/env python3
"""Run the OpenMetrics parser corpus through `scrapeguard filter` with an identity policy.

For every case folder of the corpus (a folder holding `test.json` and the exposition it
names, `metrics` by default) three kinds of check are made:

  openmetrics  `scrapeguard filter --format=openmetrics` on the case's bytes, exactly as
               stored: it must exit 0 (no signal, no timeout) and what it writes must pass
               prometheus_client's strict OpenMetrics parser. Every case, valid or not.
  samples      only for cases with "shouldParse": true: the original input and the
               output, both parsed by the same strict parser, must hold the same samples
               (name, labels, value, timestamp, exemplar) in the same order.
               With --check-metadata the families' name, type, unit and help must match
               as well.
  text         `scrapeguard filter --format=text` on the same bytes: it must exit 0 and
               its output must pass `promtool check metrics`. promtool also lints; lint
               findings (exit code 3, e.g. "counter metrics should have _total suffix")
               are not failures; a parse error (exit code 1, "error while linting: text
               format parsing error ...") is.

One line is printed per failing check, then `corpus: N passed, M failed` where N+M is the
number of checks made. The exit status is 1 if any check failed, 2 on a usage error.

Usage:
  corpus_check.py [--binary PATH] [--corpus DIR] [--only NAME] [--verbose]
                  [--promtool PATH] [--timeout SECONDS] [--check-metadata]

Needs Python 3 and prometheus_client; when run by an interpreter without it, the script
re-executes itself with the repository's .venv-test interpreter if there is one.
"""

import argparse
import collections
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from decimal import Decimal, InvalidOperation
from fractions import Fraction

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(SCRIPT_DIR))

try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    from prometheus_client.samples import Timestamp
except ImportError:  # pragma: no cover - depends on the environment
    venv_python = os.path.join(REPO_ROOT, ".venv-test", "bin", "python")
    if (os.path.exists(venv_python)
            and os.path.realpath(sys.executable) != os.path.realpath(venv_python)
            and not os.environ.get("CORPUS_CHECK_REEXEC")):
        os.environ["CORPUS_CHECK_REEXEC"] = "1"
        os.execv(venv_python, [venv_python, os.path.abspath(__file__)] + sys.argv[1:])
    sys.stderr.write("corpus_check: prometheus_client is not installed for %s\n" % sys.executable)
    sys.exit(2)

# The identity policy: a gateway config with no filter keys at all.
IDENTITY_POLICY = "upstream:\n  url: http://127.0.0.1:8000/metrics\n"

MAX_REASON = 400  # characters of a reason printed without --verbose


# ---------------------------------------------------------------------------------------
# Results


class Results:
    def __init__(self, verbose):
        self.verbose = verbose
        self.passed = 0
        self.failed = 0

    def record(self, case, check, ok, reason="", detail=""):
        if ok:
            self.passed += 1
            if self.verbose:
                print("ok   %s [%s]%s" % (case, check, (": " + reason) if reason else ""))
        else:
            self.failed += 1
            if not self.verbose and len(reason) > MAX_REASON:
                reason = reason[:MAX_REASON] + "..."
            print("FAIL %s [%s]: %s" % (case, check, reason))
        if self.verbose and detail:
            for line in detail.rstrip("\n").split("\n"):
                print("       | " + line)


def one_line(text):
    """A message on one line: newlines and other control characters made visible."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Running things


class Run:
    def __init__(self, returncode=None, stdout=b"", stderr=b"", timed_out=False, error=None):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        self.error = error

    def failure(self, what):
        """Why the run counts as a crash or failure, or None if it exited 0."""
        if self.error is not None:
            return "%s could not be started: %s" % (what, self.error)
        if self.timed_out:
            return "%s timed out" % what
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = "signal %d" % -self.returncode
            return "%s killed by %s%s" % (what, name, self.stderr_tail())
        if self.returncode != 0:
            return "%s exited %d%s" % (what, self.returncode, self.stderr_tail())
        return None

    def stderr_tail(self):
        text = self.stderr.decode("utf-8", "replace").strip()
        if not text:
            return ""
        return " (stderr: %s)" % one_line(text[-300:])


def run(argv, data, timeout):
    try:
        proc = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return Run(stdout=e.stdout or b"", stderr=e.stderr or b"", timed_out=True)
    except OSError as e:
        return Run(error=str(e))
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_filter(binary, policy, fmt, data, timeout):
    # OpenMetrics as a Prometheus 3 scraper asks for it (UTF-8 names kept, so the
    # samples compare with the input's); text as promtool 2.x reads it (names escaped).
    # Three passes through one series memo (cold, warm, warm again): the filter exits 1
    # if a warm pass differs from the cold one; the last pass's output is checked.
    escaping = "allow-utf-8" if fmt == "openmetrics" else "underscores"
    return run([binary, "filter", "--config.file=" + policy, "--format=" + fmt, "--escaping=" + escaping,
                "--repeat=3"], data, timeout)


# ---------------------------------------------------------------------------------------
# Parsing and comparing


def parse_openmetrics(data):
    """(families, None) or (None, error message). Consumes the whole generator."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, "not valid UTF-8: %s" % e
    try:
        return list(text_string_to_metric_families(text)), None
    except Exception as e:  # the parser raises ValueError mostly, but anything counts
        return None, "%s: %s" % (type(e).__name__, one_line(str(e)))


def norm_number(v):
    """A value that compares equal exactly when the numbers are the same (NaN == NaN)."""
    if isinstance(v, float):
        if math.isnan(v):
            return ("NaN",)
        if math.isinf(v):
            return ("Inf", v > 0)
        return Fraction(v)
    if isinstance(v, int):
        return Fraction(v)
    return ("?", repr(v))


def norm_timestamp(ts):
    """Timestamps as exact seconds: Timestamp(sec, nsec) and a float of the same instant
    (the parser yields a float for "1.5e3" but a Timestamp for "1500") compare equal."""
    if ts is None:
        return None
    if isinstance(ts, Timestamp):
        return Fraction(ts.sec) + Fraction(ts.nsec, 10 ** 9)
    if isinstance(ts, float):
        if math.isnan(ts) or math.isinf(ts):
            return ("?", repr(ts))
        try:
            return Fraction(Decimal(repr(ts)))
        except (InvalidOperation, ValueError):
            return ("?", repr(ts))
    if isinstance(ts, int):
        return Fraction(ts)
    return ("?", repr(ts))


def norm_labels(labels):
    return tuple(sorted((labels or {}).items()))


def norm_sample(s):
    ex = None
    if s.exemplar is not None:
        ex = (norm_labels(s.exemplar.labels), norm_number(s.exemplar.value),
              norm_timestamp(s.exemplar.timestamp))
    nh = getattr(s, "native_histogram", None)
    return (s.name, norm_labels(s.labels), norm_number(s.value), norm_timestamp(s.timestamp),
            ex, repr(nh) if nh is not None else None)


def escape_label_value(v):
    return v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def fmt_labels(labels):
    """Labels as OpenMetrics writes them (escaped), so `\\z` and `\z` read differently."""
    return "{" + ",".join('%s="%s"' % (k, one_line(escape_label_value(v)))
                          for k, v in sorted(labels.items())) + "}"


def fmt_sample(s):
    out = s.name + fmt_labels(s.labels) + " " + repr(s.value)
    if s.timestamp is not None:
        out += " " + str(s.timestamp)
    if s.exemplar is not None:
        out += " # " + fmt_labels(s.exemplar.labels) + " " + repr(s.exemplar.value)
        if s.exemplar.timestamp is not None:
            out += " " + str(s.exemplar.timestamp)
    if getattr(s, "native_histogram", None) is not None:
        out += " " + repr(s.native_histogram)
    return out


def samples_of(families):
    return [s for f in families for s in f.samples]


def compare_samples(in_fams, out_fams, limit):
    """None when the samples are the same, else a description of the difference."""
    ins, outs = samples_of(in_fams), samples_of(out_fams)
    nin, nout = [norm_sample(s) for s in ins], [norm_sample(s) for s in outs]
    if nin == nout:
        return None
    cin, cout = collections.Counter(nin), collections.Counter(nout)
    missing_keys, extra_keys = cin - cout, cout - cin
    if not missing_keys and not extra_keys:
        return "same samples in a different order (input %d, output %d)" % (len(ins), len(outs))

    def pick(samples, norms, keys):
        keys = collections.Counter(keys)
        picked = []
        for s, n in zip(samples, norms):
            if keys[n] > 0:
                keys[n] -= 1
                picked.append(s)
        return picked

    missing = pick(ins, nin, missing_keys)
    extra = pick(outs, nout, extra_keys)
    # Pair a missing and an extra sample with the same identity as "changed".
    extra_by_id = collections.defaultdict(list)
    for s in extra:
        extra_by_id[(s.name, norm_labels(s.labels))].append(s)
    changed, only_missing = [], []
    for s in missing:
        peers = extra_by_id.get((s.name, norm_labels(s.labels)))
        if peers:
            changed.append((s, peers.pop(0)))
        else:
            only_missing.append(s)
    only_extra = [s for lst in extra_by_id.values() for s in lst]
    only_extra.sort(key=lambda s: outs.index(s) if s in outs else 0)

    parts = ["input %d samples, output %d" % (len(ins), len(outs))]

    def listed(title, items, show):
        if not items:
            return
        shown = [show(x) for x in items[:limit]]
        more = "" if len(items) <= limit else " (+%d more)" % (len(items) - limit)
        parts.append("%s %d: %s%s" % (title, len(items), "; ".join(shown), more))

    listed("missing", only_missing, fmt_sample)
    listed("changed", changed, lambda p: "%s -> %s" % (fmt_sample(p[0]), fmt_sample(p[1])))
    listed("extra", only_extra, fmt_sample)
    return "; ".join(parts)


def compare_metadata(in_fams, out_fams, limit):
    def meta(fams):
        return [(f.name, f.type, f.unit, f.documentation) for f in fams]
    a, b = meta(in_fams), meta(out_fams)
    if a == b:
        return None
    diffs = []
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            diffs.append("family %d: %r -> %r" % (i, x, y))
    more = "" if len(diffs) <= limit else " (+%d more)" % (len(diffs) - limit)
    return "metadata differs: " + "; ".join(diffs[:limit]) + more


# ---------------------------------------------------------------------------------------
# The cases


def find_cases(corpus):
    cases = []
    for name in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, name)
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "test.json")):
            cases.append(name)
    return cases


def load_case(corpus, name):
    """(metrics bytes, shouldParse) or raises ValueError."""
    path = os.path.join(corpus, name)
    try:
        with open(os.path.join(path, "test.json"), "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError("cannot read test.json: %s" % e)
    should = meta.get("shouldParse")
    if not isinstance(should, bool):
        raise ValueError("test.json has no boolean shouldParse")
    try:
        with open(os.path.join(path, meta.get("file") or "metrics"), "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError("cannot read the exposition: %s" % e)
    return data, should


def check_case(name, data, should_parse, args, policy, results):
    limit = 1000 if args.verbose else 3
    filter_stderr = lambda r: r.stderr.decode("utf-8", "replace")

    # 1-3: openmetrics, valid or not: no crash, and the output parses.
    om = run_filter(args.binary, policy, "openmetrics", data, args.timeout)
    out_fams = None
    problem = om.failure("filter --format=openmetrics")
    if problem is None:
        out_fams, err = parse_openmetrics(om.stdout)
        if err is not None:
            problem = "output does not parse: %s" % err
    detail = ""
    if args.verbose:
        detail = "filter stderr: " + one_line(filter_stderr(om).strip())
        if problem is not None:
            detail += "\noutput:\n" + om.stdout.decode("utf-8", "replace")
    results.record(name, "openmetrics", problem is None, problem or "", detail)

    # 4: a valid case keeps its samples.
    if should_parse:
        in_fams, err = parse_openmetrics(data)
        if err is not None:
            results.record(name, "samples", False,
                           "the input does not parse although shouldParse is true: %s" % err)
        elif out_fams is None:
            results.record(name, "samples", False, "cannot compare: the openmetrics run failed")
        else:
            diffs = [compare_samples(in_fams, out_fams, limit)]
            if args.check_metadata:
                diffs.append(compare_metadata(in_fams, out_fams, limit))
            diff = "; ".join(d for d in diffs if d) or None
            results.record(name, "samples", diff is None, diff or "",
                           ("output:\n" + om.stdout.decode("utf-8", "replace"))
                           if diff and args.verbose else "")

    # 5: text 0.0.4: no crash, and promtool parses the output.
    tx = run_filter(args.binary, policy, "text", data, args.timeout)
    problem = tx.failure("filter --format=text")
    lint = ""
    if problem is None:
        pt = run([args.promtool, "check", "metrics"], tx.stdout, args.timeout)
        msg = one_line(pt.stderr.decode("utf-8", "replace").strip() +
                       pt.stdout.decode("utf-8", "replace").strip())
        if pt.error is not None or pt.timed_out or (pt.returncode or 0) < 0:
            problem = pt.failure("promtool")
        elif pt.returncode in (0, 3) and "error while linting" not in msg:
            lint = msg  # 0: clean; 3: lint findings only
        elif pt.returncode == 1 or "error while linting" in msg:
            problem = "promtool rejects the output: %s" % msg
        else:
            problem = "promtool exited %d: %s" % (pt.returncode, msg)
    detail = ""
    if args.verbose:
        detail = "filter stderr: " + one_line(filter_stderr(tx).strip())
        if lint:
            detail += "\npromtool lint (not a failure): " + lint
        if problem is not None:
            detail += "\noutput:\n" + tx.stdout.decode("utf-8", "replace")
    results.record(name, "text", problem is None, problem or "", detail)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO_ROOT, ".build", "debug", "scrapeguard"),
                    help="the scrapeguard binary (default: .build/debug/scrapeguard)")
    ap.add_argument("--corpus",
                    default=os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "corpus",
                                                          "openmetrics")),
                    help="the corpus folder (default: ../shared/corpus/openmetrics)")
    ap.add_argument("--only", metavar="NAME", help="check this one case")
    ap.add_argument("--verbose", action="store_true",
                    help="print passing checks, the filter's summary, lint findings, outputs")
    ap.add_argument("--promtool", default="/usr/bin/promtool", help="promtool (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=20.0,
                    help="seconds allowed per run (default: %(default)s)")
    ap.add_argument("--check-metadata", action="store_true",
                    help="samples check also compares family names, types, units and help")
    args = ap.parse_args(argv)

    if not os.access(args.binary, os.X_OK):
        sys.stderr.write("corpus_check: no executable binary at %s\n" % args.binary)
        return 2
    if not os.path.isdir(args.corpus):
        sys.stderr.write("corpus_check: no corpus folder at %s\n" % args.corpus)
        return 2
    cases = find_cases(args.corpus)
    if args.only:
        if args.only not in cases:
            sys.stderr.write("corpus_check: no case %r in %s\n" % (args.only, args.corpus))
            return 2
        cases = [args.only]
    if not cases:
        sys.stderr.write("corpus_check: no cases in %s\n" % args.corpus)
        return 2

    results = Results(args.verbose)
    with tempfile.TemporaryDirectory(prefix="corpus-check-") as tmp:
        policy = os.path.join(tmp, "scrapeguard.yml")
        with open(policy, "w") as f:
            f.write(IDENTITY_POLICY)
        for name in cases:
            try:
                data, should_parse = load_case(args.corpus, name)
            except ValueError as e:
                results.record(name, "case", False, str(e))
                continue
            check_case(name, data, should_parse, args, policy, results)

    print("corpus: %d passed, %d failed" % (results.passed, results.failed))
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
