#!/usr/bin/env python3
"""Fill in (or check) the expected results of the relabel golden fixtures from a
real Prometheus.

Every Tests/Fixtures/relabel/*.yml holds a `description`, the `metric_relabel_configs`
as a Prometheus scrape config would hold them, and either an `input` exposition
(valid cases) or nothing else (files named invalid_*.yml).  This script:

  * valid cases: serves `input` on 127.0.0.1 as text format 0.0.4, runs one
    short-lived Prometheus per case (loopback only, temporary TSDB) whose single
    scrape job carries the case's rules verbatim, waits for three scrapes, reads
    every stored series back through the HTTP API and writes them as `output`
    (canonical lines, job/instance left out).  When Prometheus fails the scrape
    as a whole, the target's lastError goes to `prometheus_scrape_error`.
  * invalid_*.yml: runs `promtool check config` on a config holding the rules and
    writes the relabel part of its message as `error`.

The generated keys (output, prometheus_scrape_error, error) are always the last
keys of a case file; everything above them is kept byte for byte.

Usage:
  scripts/relabel-golden.py [--check] [-j N] [CASE ...]
    --check   do not write; exit 1 if any stored result differs from Prometheus's
    -j N      Prometheus processes at once (default 4)
    CASE      case names (file stems) or paths; default: every case

Needs Debian's prometheus package (prometheus and promtool 2.42 on PATH, or set
PROMETHEUS / PROMTOOL) and PyYAML.
"""

import argparse
import concurrent.futures
import http.server
import json
import os
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

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "Tests", "Fixtures", "relabel"))
PROMETHEUS = os.environ.get("PROMETHEUS", "prometheus")
PROMTOOL = os.environ.get("PROMTOOL", "promtool")

JOB = "relabel_golden"
# Series Prometheus writes for every scrape on its own; never part of a case's output.
REPORT_SERIES = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}
# Labels Prometheus adds to every scraped series (target labels); left out of output.
TARGET_LABELS = ("job", "instance")
GENERATED_KEYS = ("output", "prometheus_scrape_error", "error")
SCRAPES_BEFORE_QUERY = 3
CASE_TIMEOUT = 40.0


# --------------------------------------------------------------------------- files

def list_cases(names):
    if not names:
        return sorted(
            os.path.join(FIXTURES, f) for f in os.listdir(FIXTURES) if f.endswith(".yml")
        )
    out = []
    for n in names:
        if os.path.sep in n or n.endswith(".yml"):
            out.append(os.path.abspath(n))
        else:
            out.append(os.path.join(FIXTURES, n + ".yml"))
    return out


TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):(.*)$")


def split_case(text):
    """Returns (authored text, raw metric_relabel_configs block as (rest, lines))."""
    lines = text.splitlines(keepends=True)
    cut = len(lines)
    for i, line in enumerate(lines):
        m = TOP_KEY.match(line)
        if m and m.group(1) in GENERATED_KEYS:
            cut = i
            break
    for line in lines[cut:]:
        m = TOP_KEY.match(line)
        if m and m.group(1) not in GENERATED_KEYS:
            raise ValueError(f"key {m.group(1)!r} after the generated keys")
    authored = "".join(lines[:cut])
    if authored and not authored.endswith("\n"):
        authored += "\n"

    start = None
    for i, line in enumerate(lines[:cut]):
        m = TOP_KEY.match(line)
        if m and m.group(1) == "metric_relabel_configs":
            start = i
            rest = m.group(2)
            break
    if start is None:
        raise ValueError("no metric_relabel_configs key")
    block = []
    for line in lines[start + 1 : cut]:
        if TOP_KEY.match(line):
            break
        block.append(line.rstrip("\n"))
    while block and not block[-1].strip():
        block.pop()
    return authored, rest, block


def rules_yaml(rest, block, indent):
    """The case's metric_relabel_configs, verbatim, re-indented under a job."""
    pad = " " * indent
    out = [f"{pad}metric_relabel_configs:{rest}"]
    out += [(pad + l) if l.strip() else "" for l in block]
    return "\n".join(out) + "\n"


def load_case(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    data = yaml.safe_load(text)
    authored, rest, block = split_case(text)
    name = os.path.basename(path)[: -len(".yml")]
    invalid = name.startswith("invalid_")
    if not isinstance(data.get("description"), str):
        raise ValueError(f"{path}: no description")
    if invalid and "input" in data:
        raise ValueError(f"{path}: an invalid_ case has no input")
    if not invalid and not isinstance(data.get("input"), str):
        raise ValueError(f"{path}: no input")
    return {
        "name": name,
        "path": path,
        "data": data,
        "authored": authored,
        "rules": (rest, block),
        "invalid": invalid,
    }


def yaml_str(s):
    """A double-quoted YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(s, ensure_ascii=False)


def render_generated(result):
    out = []
    if "error" in result:
        out.append(f"error: {yaml_str(result['error'])}\n")
        return "".join(out)
    series = result["output"]
    if series:
        out.append("output: |\n")
        out += [f"  {line}\n" for line in series]
    else:
        out.append('output: ""\n')
    if result.get("scrape_error"):
        out.append(f"prometheus_scrape_error: {yaml_str(result['scrape_error'])}\n")
    return "".join(out)


# --------------------------------------------------------------------------- canonical

def escape_value(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def canonical(metric, value):
    labels = {k: v for k, v in metric.items() if k not in TARGET_LABELS}
    name = labels.pop("__name__", "")
    body = ",".join(f'{k}="{escape_value(labels[k])}"' for k in sorted(labels))
    return f"{name}{{{body}}} {value}" if body else f"{name} {value}"


# --------------------------------------------------------------------------- serving

class Exposition(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies = {}
        self.hits = {}
        self.lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        body = self.server.bodies.get(name)
        if body is None:
            self.send_error(404)
            return
        with self.server.lock:
            self.server.hits[name] = self.server.hits.get(name, 0) + 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def run_valid(case, server):
    name = case["name"]
    server.bodies[name] = case["data"]["input"].encode("utf-8")
    sport = server.server_address[1]
    tmp = tempfile.mkdtemp(prefix=f"relabel-golden-{name}-")
    proc = None
    try:
        port = free_port()
        cfg = (
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: {JOB}\n"
            "    honor_labels: true\n"
            f"    metrics_path: /case/{name}\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{sport}']\n"
            + rules_yaml(*case["rules"], indent=4)
        )
        cfg_path = os.path.join(tmp, "prometheus.yml")
        with open(cfg_path, "w", encoding="utf-8") as f:
            f.write(cfg)
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={cfg_path}",
                f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        api = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + CASE_TIMEOUT
        while True:
            if proc.poll() is not None:
                log.flush()
                with open(os.path.join(tmp, "prometheus.log"), errors="replace") as lf:
                    raise RuntimeError(f"prometheus exited: {lf.read()[-2000:]}")
            if server.hits.get(name, 0) >= SCRAPES_BEFORE_QUERY:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("timed out waiting for scrapes")
            time.sleep(0.1)
        time.sleep(0.2)

        targets = get_json(f"{api}/api/v1/targets?state=active")["data"]["activeTargets"]
        if len(targets) != 1:
            raise RuntimeError(f"expected one target, got {len(targets)}")
        target = targets[0]
        instance = target["labels"].get("instance", "")
        scrape_error = target.get("lastError", "") if target.get("health") != "up" else ""
        # The error may print the whole label set, whose instance is a random port.
        scrape_error = scrape_error.replace(instance, "127.0.0.1:PORT")

        q = urllib.parse.urlencode({"query": '{__name__=~".+"}'})
        res = get_json(f"{api}/api/v1/query?{q}")
        if res.get("status") != "success":
            raise RuntimeError(f"query failed: {res}")
        lines = []
        for item in res["data"]["result"]:
            metric = item["metric"]
            if metric.get("__name__") in REPORT_SERIES and metric.get("job") == JOB:
                continue
            # A label carrying a target label's value under another name means a
            # rule read job/instance, which the gateway never sees: not a valid case.
            for k, v in metric.items():
                if k not in TARGET_LABELS and v in (JOB, instance):
                    raise RuntimeError(f"label {k}={v!r} derives from a target label")
            lines.append(canonical(metric, item["value"][1]))
        lines.sort()
        return {"output": lines, "scrape_error": scrape_error}
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.bodies.pop(name, None)
        shutil.rmtree(tmp, ignore_errors=True)


PARSE_PREFIX = re.compile(r"parsing YAML file [^:]*: ")


def run_invalid(case):
    tmp = tempfile.mkdtemp(prefix=f"relabel-golden-{case['name']}-")
    try:
        cfg = (
            "scrape_configs:\n"
            f"  - job_name: {JOB}\n"
            "    static_configs:\n"
            "      - targets: ['127.0.0.1:9']\n"
            + rules_yaml(*case["rules"], indent=4)
        )
        cfg_path = os.path.join(tmp, "prometheus.yml")
        with open(cfg_path, "w", encoding="utf-8") as f:
            f.write(cfg)
        p = subprocess.run(
            [PROMTOOL, "check", "config", "--syntax-only", cfg_path],
            capture_output=True,
            text=True,
        )
        text = (p.stdout + p.stderr).strip()
        if p.returncode == 0:
            return {"error": None, "raw": text}
        msg = None
        lines = text.splitlines()
        for i, line in enumerate(lines):
            m = PARSE_PREFIX.search(line)
            if m:
                msg = line[m.end():].strip()
                # go-yaml lists its type errors on the following lines, each with a
                # line number of the wrapper config: keep the first, without it.
                if msg.endswith("unmarshal errors:") and i + 1 < len(lines):
                    msg = re.sub(r"^\s*line \d+: ", "", lines[i + 1])
                break
        if msg is None:
            msg = text.splitlines()[-1].strip()
        return {"error": msg, "raw": text}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("-j", type=int, default=4)
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()

    for tool in (PROMETHEUS, PROMTOOL):
        if shutil.which(tool) is None:
            print(f"{tool} not found (Debian: apt-get install prometheus)", file=sys.stderr)
            return 2

    cases = [load_case(p) for p in list_cases(args.cases)]
    server = Exposition()
    threading.Thread(target=server.serve_forever, daemon=True).start()

    failures = 0

    def work(case):
        try:
            if case["invalid"]:
                return case, run_invalid(case)
            return case, run_valid(case, server)
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(f"{case['name']}: {e}") from e

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.j)) as ex:
            futures = [ex.submit(work, c) for c in cases]
            for fut in concurrent.futures.as_completed(futures):
                try:
                    case, result = fut.result()
                except Exception as e:  # noqa: BLE001
                    failures += 1
                    print(f"ERROR {e}", file=sys.stderr)
                    continue
                name = case["name"]
                if case["invalid"] and result["error"] is None:
                    failures += 1
                    print(f"FAIL  {name}: promtool accepted the config: {result['raw']}")
                    continue
                data = case["data"]
                if args.check:
                    if case["invalid"]:
                        want = data.get("error")
                        ok = isinstance(want, str) and want != "" and want in result["raw"]
                        detail = f"promtool said: {result['raw']}"
                    else:
                        want_out = data.get("output") or ""
                        got_out = "".join(l + "\n" for l in result["output"])
                        want_err = data.get("prometheus_scrape_error") or ""
                        ok = want_out == got_out and want_err == result["scrape_error"]
                        detail = (
                            f"stored:\n{want_out}{want_err}\nprometheus:\n{got_out}"
                            f"{result['scrape_error']}"
                        )
                    if ok:
                        print(f"ok    {name}")
                    else:
                        failures += 1
                        print(f"FAIL  {name}\n{detail}")
                else:
                    new = case["authored"] + render_generated(result)
                    with open(case["path"], encoding="utf-8") as f:
                        old = f.read()
                    if new != old:
                        with open(case["path"], "w", encoding="utf-8") as f:
                            f.write(new)
                        print(f"wrote {name}")
                    else:
                        print(f"same  {name}")
    finally:
        server.shutdown()

    total = len(cases)
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
