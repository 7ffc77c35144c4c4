#!/usr/bin/env python3
"""Helpers for e2e/prometheus.sh and e2e/native_histograms.sh: the app prometheus.sh
scrapes and the checks both make against Prometheus's HTTP API. Runs under the test
venv (.venv-test: prometheus_client, PyYAML).

  app PORT LOG SLOWFILE SERIES   the exporter (prometheus_client) on 127.0.0.1:PORT
  free-ports N                   N distinct free TCP ports on 127.0.0.1
  cap CONFIG                     limits.series_per_metric of a scrapeguard.yml
  rules IN OUT                   a rule file with every group evaluated each second
  targets PROM                   the scrape pools' health and last errors
  target PROM POOL TIMEOUT       once scraped: POOL's health <TAB> last error
  value PROM EXPR                the value of a one-series query
  pii PROM START INSTANCE        no label value stored since START carries PII
  app-raw BODYFILE               the app's own output does carry that PII
  cap-check PROM CAP SERIES START
                                 the capped metric holds exactly CAP series
  dropped PROM CAP SERIES        the gateway's drop counter agrees
  records PROM RULES TIMEOUT     every recording rule has produced a series
  wait-up PROM JOB N TIMEOUT     until JOB has N successful scrapes in a row
  drain PROM APPLOG T_TERM SLOW
                                 the scrape in flight at SIGTERM completed whole
  expect PROM EXPR WANT TIMEOUT  until EXPR gives one series of value WANT
  no-series PROM EXPR            EXPR gives no series
  no-label-no-email PROM LABEL   no stored series has LABEL or an e-mail in a value
  accepts REQUEST_LOG            what protobuf_exposition.py serve answered whom

Each check prints one line on success (what it saw) or the evidence and exits 1.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request

# ---------------------------------------------------------------- the app's data
# Personal data the app puts into label values. The gateway's policy must keep every
# one of these out of Prometheus; the app's raw output must contain every one (or the
# check proves nothing).
EMAILS = ["alice.liddell@example.com", "bob+metrics@example.org", "carol.o@mail.example.net"]
IPS = ["203.0.113.7", "198.51.100.23", "10.12.34.56"]
SESSIONS = ["sess-7f3a9c2e41b8d605", "sess-0b5e2d9a6c4f1873", "sess-e84c1f07a2b9d356"]
CAPPED = "app_cart_items"  # the metric with more series than the cap

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
IPV4_RE = re.compile(r"(?<![0-9.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![0-9.])")


def fail(message: str) -> None:
    print(message)
    sys.exit(1)


# ---------------------------------------------------------------- the app
def cmd_app(port: int, log_path: str, slow_path: str, capped_series: int) -> None:
    """An exporter built on prometheus_client, as the seed article's is, with personal
    data in label values and one metric over the cardinality cap. Deterministic: the
    same series with the same sample count on every scrape. If SLOWFILE exists it holds
    a number of seconds: the response then sends its first half, waits that long, and
    sends the rest, so a scrape is in flight (mid-body) for that long."""
    import http.server

    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.exposition import choose_encoder

    registry = CollectorRegistry(auto_describe=True)
    tasks = Counter("app_processed_tasks", "Tasks processed by the application.", registry=registry)
    workers = Gauge("app_active_workers", "Active workers in the application.", registry=registry)
    logins = Counter("app_logins", "Logins by user, client address and session.",
                     ["user_email", "client_ip", "session_id", "result"], registry=registry)
    requests = Counter("app_http_requests", "HTTP requests by route and peer.",
                       ["method", "route", "status", "peer"], registry=registry)
    duration = Histogram("app_http_request_duration_seconds", "HTTP request duration.", ["route"],
                         buckets=(0.01, 0.05, 0.1, 0.5, 1.0), registry=registry)
    cart = Gauge(CAPPED, "Items per cart (one series per cart: more than the cap).", ["cart"], registry=registry)

    workers.set(4)
    for i, (email, ip, session) in enumerate(zip(EMAILS, IPS, SESSIONS)):
        logins.labels(email, ip, session, "success").inc(i + 1)
        requests.labels("get", f"/users/{email}/settings", "200", f"{ip}:443").inc(10 * (i + 1))
    logins.labels(EMAILS[0], IPS[2], SESSIONS[1], "failure").inc(2)
    for value in (0.004, 0.02, 0.07, 0.3, 0.8, 2.5):
        duration.labels("/api/v1/items").observe(value)
    for i in range(capped_series):
        cart.labels(f"cart-{i:05d}").set(i % 17)

    log_lock = threading.Lock()
    served = [0]

    def log(line: str) -> None:
        with log_lock, open(log_path, "a", encoding="utf-8") as f:
            f.write(f"{time.time():.3f} {line}\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            with log_lock:
                served[0] += 1
                n = served[0]
            tasks.inc()
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            body = encoder(registry)
            try:
                with open(slow_path, encoding="utf-8") as f:
                    slow = float(f.read().strip() or 0)
            except FileNotFoundError:
                slow = 0.0
            log(f"start {n} slow={slow:g} bytes={len(body)}")
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            if slow:
                time.sleep(slow)
            self.wfile.write(body[half:])
            self.wfile.flush()
            log(f"end {n}")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    log(f"listening 127.0.0.1:{port}")
    server.serve_forever()


# ---------------------------------------------------------------- small tools
def cmd_free_ports(n: int) -> None:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def cmd_cap(config: str) -> None:
    import yaml

    with open(config, encoding="utf-8") as f:
        cap = ((yaml.safe_load(f) or {}).get("limits") or {}).get("series_per_metric")
    if not isinstance(cap, int) or cap < 1:
        fail(f"{config}: no limits.series_per_metric")
    print(cap)


def cmd_rules(src: str, out: str) -> None:
    """The deploy rules evaluate every 30s (interval: 30s per group); here every
    second, so a run takes seconds. Expressions and names are left as they are."""
    import yaml

    with open(src, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    for group in data["groups"]:
        group["interval"] = "1s"
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    records = [r["record"] for g in data["groups"] for r in g["rules"] if "record" in r]
    alerts = [r["alert"] for g in data["groups"] for r in g["rules"] if "alert" in r]
    print(f"{len(records)} recording rules, {len(alerts)} alerts, {len(data['groups'])} groups")


# ---------------------------------------------------------------- Prometheus API
def api(prom: str, path: str, **params) -> object:
    query = urllib.parse.urlencode(params, doseq=True)
    url = f"{prom}/api/v1/{path}" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.load(r)
    if doc.get("status") != "success":
        raise RuntimeError(f"{url}: {doc}")
    return doc["data"]


def instant(prom: str, expr: str) -> list[dict]:
    return api(prom, "query", query=expr)["result"]


def raw_samples(prom: str, selector: str, window: str) -> list[tuple[float, float]]:
    """The stored samples of one series (selector must match exactly one)."""
    result = instant(prom, f"{selector}[{window}]")
    if len(result) != 1:
        raise RuntimeError(f"{selector}: {len(result)} series, expected 1")
    return [(float(t), float(v)) for t, v in result[0]["values"]]


def cmd_targets(prom: str) -> None:
    for t in api(prom, "targets", state="active")["activeTargets"]:
        print(f"{t['scrapePool']}\t{t['health']}\t{t.get('lastError', '')}")


def cmd_target(prom: str, pool: str, timeout: float) -> None:
    """Once POOL's single target has been scraped: its health, a tab, its last error."""
    deadline = time.monotonic() + timeout
    targets = []
    while time.monotonic() < deadline:
        targets = [t for t in api(prom, "targets", state="active")["activeTargets"] if t["scrapePool"] == pool]
        if len(targets) == 1 and targets[0]["health"] != "unknown":
            print(f"{targets[0]['health']}\t{targets[0].get('lastError', '')}")
            return
        time.sleep(0.5)
    fail(f"{pool}: not scraped within {timeout:g}s: {targets}")


def cmd_value(prom: str, expr: str) -> None:
    """The value of EXPR, which must give exactly one series."""
    result = instant(prom, expr)
    if len(result) != 1:
        fail(f"{expr}: {len(result)} series: {result}")
    print(result[0]["value"][1])


def cmd_wait_up(prom: str, job: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            seen = [v for _, v in raw_samples(prom, f'up{{job="{job}"}}', "5m")]
        except RuntimeError:
            seen = []
        if len(seen) >= n and all(v == 1 for v in seen[-n:]):
            print(f"{job}: {len(seen)} scrapes, the last {n} up")
            return
        time.sleep(0.5)
    fail(f"{job}: not {n} successful scrapes in a row within {timeout:g}s; up samples: {seen}")


def label_values(series: list[dict]):
    for s in series:
        for name, value in s.items():
            yield s, name, value


def cmd_pii(prom: str, start: str, gateway_instance: str) -> None:
    """Every series Prometheus stored since START (raw scrapes, the gateway's own
    metrics, recording rules), every label value: no e-mail address, no IPv4 address
    (but the targets' own instance label), none of the app's session ids."""
    series = api(prom, "series", **{"match[]": '{__name__=~".+"}', "start": start, "end": f"{time.time():.3f}"})
    if len(series) < 50:
        fail(f"only {len(series)} series stored: nothing to check")
    found = []
    for s, name, value in label_values(series):
        if name == "instance" and value == gateway_instance:
            continue
        why = []
        if EMAIL_RE.search(value):
            why.append("e-mail")
        if IPV4_RE.search(value):
            why.append("IPv4")
        if any(sid in value for sid in SESSIONS):
            why.append("session id")
        if name == "session_id":
            why.append("session_id label")
        if why:
            found.append(f"{'/'.join(why)} in {name}={value!r} of {s.get('__name__')}")
    if found:
        fail(f"{len(found)} label value(s) carry PII:\n  " + "\n  ".join(found[:40]))
    # The app's series are there, with the marker where the PII was.
    logins = [s for s in series if s.get("__name__") == "app_logins_total"]
    routes = {s.get("route") for s in series if s.get("__name__") == "app_http_requests_total"}
    if not logins or any(s.get("user_email") != "redacted" or s.get("client_ip") != "redacted" for s in logins):
        fail(f"app_logins_total not stored with user_email/client_ip redacted: {logins}")
    if routes != {"redacted"}:
        fail(f"app_http_requests_total routes stored: {routes}, expected only 'redacted'")
    names = {s.get("__name__") for s in series}
    print(f"{len(series)} series, {len(names)} metric names: no e-mail, IPv4 or session id; "
          f"app_logins_total {{user_email,client_ip}}=redacted, session_id dropped")


def cmd_app_raw(body_file: str) -> None:
    body = open(body_file, encoding="utf-8").read()
    missing = [v for v in EMAILS + IPS + SESSIONS if v not in body]
    if missing:
        fail(f"the app's own output lacks {missing}: the PII check would prove nothing")
    print(f"the app itself serves {len(EMAILS)} e-mails, {len(IPS)} IPv4 addresses, {len(SESSIONS)} session ids")


def cmd_cap_check(prom: str, cap: int, app_series: int, start: str) -> None:
    now = instant(prom, CAPPED)
    ever = api(prom, "series", **{"match[]": CAPPED, "start": start, "end": f"{time.time():.3f}"})
    carts = sorted(s["cart"] for s in ever)
    # Admission is stable and in body order: the first CAP carts, every scrape.
    expected = [f"cart-{i:05d}" for i in range(cap)]
    if len(now) != cap:
        fail(f"{CAPPED}: {len(now)} series now, expected the cap {cap} (the app serves {app_series})")
    if carts != expected:
        extra = sorted(set(carts) - set(expected))[:10]
        fail(f"{CAPPED}: {len(carts)} series ever stored, expected cart-00000..cart-{cap - 1:05d}; beyond: {extra}")
    print(f"{CAPPED}: the app serves {app_series} series; Prometheus holds exactly {cap} "
          f"(cart-00000..cart-{cap - 1:05d}), the {app_series - cap} beyond the cap never stored")


def cmd_dropped(prom: str, cap: int, app_series: int) -> None:
    """The gateway's own counter, as Prometheus scraped it from /gateway/metrics: the
    drops are counted per scrape of the app, all at once, so the counter is a whole
    multiple of (series - cap) and equals that times the successful scrapes (the two
    counters are read in one scrape of /gateway/metrics; a scrape of the app finishing
    between the two reads is the only way they can disagree, by one, hence the retry)."""
    per_scrape = app_series - cap
    last = ""
    for _ in range(10):
        dropped = instant(prom, f'scrapeguard_filter_series_dropped_total{{metric="{CAPPED}"}}')
        success = instant(prom, 'scrapeguard_scrapes_total{result="success"}')
        admitted = instant(prom, f'scrapeguard_filter_series_admitted{{metric="{CAPPED}"}}')
        if len(dropped) != 1 or len(success) != 1 or len(admitted) != 1:
            last = f"series: dropped {dropped}, success {success}, admitted {admitted}"
        else:
            d, s, a = float(dropped[0]["value"][1]), float(success[0]["value"][1]), float(admitted[0]["value"][1])
            reason = dropped[0]["metric"].get("reason")
            last = f"dropped {d:g} (reason {reason}), successful scrapes {s:g}, admitted {a:g}"
            if reason == "series_limit" and d > 0 and d == per_scrape * s and a == cap:
                print(f"scrapeguard_filter_series_dropped_total{{reason=\"series_limit\",metric=\"{CAPPED}\"}} = {d:g}"
                      f" = {per_scrape} x {s:g} successful scrapes; series_admitted = {a:g}")
                return
        time.sleep(1)
    fail(f"expected dropped == {per_scrape} x successful scrapes, reason series_limit, admitted {cap}: {last}")


def cmd_records(prom: str, rules_file: str, timeout: float) -> None:
    import yaml

    with open(rules_file, encoding="utf-8") as f:
        records = [r["record"] for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "record" in r]
    deadline = time.monotonic() + timeout
    missing = records
    while time.monotonic() < deadline:
        missing = [r for r in records if not instant(prom, r)]
        if not missing:
            break
        time.sleep(1)
    if missing:
        groups = api(prom, "rules", type="record")["groups"]
        health = {r["name"]: (r["health"], r.get("lastError", "")) for g in groups for r in g["rules"]}
        fail("no series for: " + ", ".join(f"{m} (health {health.get(m)})" for m in missing))
    print(f"all {len(records)} recording rules produce series")


def read_app_log(app_log: str) -> tuple[dict, dict]:
    starts, ends = {}, {}
    for line in open(app_log, encoding="utf-8"):
        parts = line.split()
        if len(parts) >= 3 and parts[1] in ("start", "end"):
            (starts if parts[1] == "start" else ends)[parts[2]] = (float(parts[0]), line.strip())
    return starts, ends


def cmd_drain(prom: str, app_log: str, t_term: float, slow: float) -> None:
    """The gateway got its signal while the app was in the middle of a slow body.
    The scrape that was in flight must be stored as a success, with the full sample
    count and a duration that spans the slow part (not cut, not shortened), and every
    later scrape must have failed (the gateway is gone). All problems are listed."""
    problems = []
    starts, ends = read_app_log(app_log)
    slow_ones = [n for n, (t, line) in starts.items() if f"slow={slow:g} " in line and t <= t_term]
    if not slow_ones:
        fail(f"no slow request started before the signal ({t_term:.3f}) in {app_log}")
    n = max(slow_ones, key=lambda k: starts[k][0])
    t_start = starts[n][0]
    # Wait for Prometheus to try again after the exit (one scrape interval and more).
    deadline = time.monotonic() + 20
    while True:
        ups = raw_samples(prom, 'up{job="gateway"}', "2m")
        after = [(t, v) for t, v in ups if t > t_start + 0.05]
        if after or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if n not in read_app_log(app_log)[1]:
        problems.append(f"the app could not finish request {n} (started {t_start:.3f}): its peer was gone")
    durations = dict(raw_samples(prom, 'scrape_duration_seconds{job="gateway"}', "2m"))
    samples = dict(raw_samples(prom, 'scrape_samples_scraped{job="gateway"}', "2m"))
    # Prometheus stamps a scrape with its start time: the one in flight is the last
    # scrape that started before the app logged the slow request's start.
    before = [(t, v) for t, v in ups if t <= t_start + 0.05]
    if len(before) < 2:
        fail(f"fewer than 2 gateway scrapes stored before {t_start:.3f}: {ups[-5:]}")
    t, up = before[-1]
    d, s = durations.get(t), samples.get(t)
    # Every scrape is the same size (the app is deterministic): the full count is what
    # each earlier successful scrape stored.
    earlier = {samples.get(tt) for tt, v in before[:-1] if v == 1}
    if len(earlier) != 1:
        problems.append(f"earlier successful scrapes stored differing sample counts: {earlier}")
    full = max(earlier or {0})
    detail = (f"scrape in flight {t_term - t:.2f}s when signalled: up={up:g}, "
              f"{d if d is None else round(d, 2)}s, {s:g} samples (full {full:g})")
    if up != 1:
        problems.append("the scrape in flight failed (up=0)")
    if d is None or d < slow * 0.9:
        problems.append(f"its duration {d} is shorter than the app's delay {slow:g}s")
    if s != full:
        problems.append(f"it stored {s:g} samples, not {full:g}")
    if not after:
        problems.append("no scrape stored after it")
    elif any(v != 0 for _, v in after):
        problems.append(f"expected only failed scrapes after it (the gateway is gone): {after}")
    if problems:
        fail(detail + "\n  " + "\n  ".join(problems) + f"\n  last samples of up: {ups[-6:]}")
    print(f"{detail}; then {len(after)} scrape(s) down")


# ---------------------------------------------------------------- native histograms
def cmd_expect(prom: str, expr: str, want: float, timeout: float) -> None:
    """Until EXPR gives exactly one series whose value is WANT (to 1e-9, relative), at
    most TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = instant(prom, expr)
        if len(result) == 1 and "value" in result[0]:
            got = float(result[0]["value"][1])
            if abs(got - want) <= 1e-9 * max(1.0, abs(want)):
                print(f"{expr} = {result[0]['value'][1]}")
                return
        if time.monotonic() >= deadline:
            fail(f"{expr}: expected one series = {want:g} within {timeout:g}s, got {result}")
        time.sleep(0.5)


def cmd_no_series(prom: str, expr: str) -> None:
    result = instant(prom, expr)
    if result:
        fail(f"{expr}: expected no series, got {result}")
    print(f"{expr}: no series")


def cmd_no_label_no_email(prom: str, label: str) -> None:
    """No series Prometheus holds (any job, any metric, Prometheus's own included) has
    LABEL, asked both ways: the query count({LABEL!=""}) is empty, and in the series
    API's list of every series no series has LABEL and no label value is an e-mail
    address."""
    counted = instant(prom, f'count({{{label}!=""}})')
    series = api(prom, "series", **{"match[]": '{__name__=~".+"}', "start": "0", "end": f"{time.time():.3f}"})
    if len(series) < 10:
        fail(f"only {len(series)} series stored: nothing to check")
    found = [f"{name}={value!r} of {s.get('__name__')}" for s, name, value in label_values(series)
             if name == label or EMAIL_RE.search(value)]
    if counted or found:
        fail((f'count({{{label}!=""}}) = {counted[0]["value"][1]}\n' if counted else "")
             + f"{len(found)} label(s) with {label} or an e-mail address:\n  " + "\n  ".join(found[:40]))
    jobs = sorted({s.get("job", "") for s in series})
    print(f'count({{{label}!=""}}) empty; {len(series)} series (jobs {", ".join(jobs)}): no {label}, no e-mail address')


def cmd_accepts(request_log: str) -> None:
    """The request log of protobuf_exposition.py serve: the scrapes that came for
    ?scraper=native asked for protobuf (the delimited MetricFamily clause in Accept) and
    got it; those for ?scraper=classic asked for no protobuf and got text. Each at least
    twice."""
    seen = {"native": [], "classic": []}
    for line in open(request_log, encoding="utf-8"):
        entry = json.loads(line)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(entry["path"]).query)
        for scraper in query.get("scraper", []):
            if scraper in seen:
                seen[scraper].append(entry)
    problems = []
    for scraper, want_protobuf in (("native", True), ("classic", False)):
        entries = seen[scraper]
        if len(entries) < 2:
            problems.append(f"{scraper}: {len(entries)} request(s) reached the app")
        for entry in entries:
            accept = entry["accept"] or ""
            asked = "application/vnd.google.protobuf" in accept and "encoding=delimited" in accept
            if asked != want_protobuf or entry["answered"] != ("protobuf" if want_protobuf else "text"):
                problems.append(f"{scraper}: Accept {accept!r} answered {entry['answered']}")
    if problems:
        fail("\n".join(problems[:20]))
    accepts = {scraper: sorted({e["accept"] for e in entries}) for scraper, entries in seen.items()}
    print(f"native: {len(seen['native'])} requests, protobuf asked and answered; "
          f"classic: {len(seen['classic'])}, text; Accept native {accepts['native']}, classic {accepts['classic']}")


def main() -> None:
    a = sys.argv[1:]
    if not a:
        fail(__doc__)
    cmd, args = a[0], a[1:]
    if cmd == "app":
        cmd_app(int(args[0]), args[1], args[2], int(args[3]))
    elif cmd == "free-ports":
        cmd_free_ports(int(args[0]))
    elif cmd == "cap":
        cmd_cap(args[0])
    elif cmd == "rules":
        cmd_rules(args[0], args[1])
    elif cmd == "targets":
        cmd_targets(args[0])
    elif cmd == "target":
        cmd_target(args[0], args[1], float(args[2]))
    elif cmd == "value":
        cmd_value(args[0], args[1])
    elif cmd == "wait-up":
        cmd_wait_up(args[0], args[1], int(args[2]), float(args[3]))
    elif cmd == "pii":
        cmd_pii(args[0], args[1], args[2])
    elif cmd == "app-raw":
        cmd_app_raw(args[0])
    elif cmd == "cap-check":
        cmd_cap_check(args[0], int(args[1]), int(args[2]), args[3])
    elif cmd == "dropped":
        cmd_dropped(args[0], int(args[1]), int(args[2]))
    elif cmd == "records":
        cmd_records(args[0], args[1], float(args[2]))
    elif cmd == "drain":
        cmd_drain(args[0], args[1], float(args[2]), float(args[3]))
    elif cmd == "expect":
        cmd_expect(args[0], args[1], float(args[2]), float(args[3]))
    elif cmd == "no-series":
        cmd_no_series(args[0], args[1])
    elif cmd == "no-label-no-email":
        cmd_no_label_no_email(args[0], args[1])
    elif cmd == "accepts":
        cmd_accepts(args[0])
    else:
        fail(f"unknown command {cmd}\n{__doc__}")


if __name__ == "__main__":
    main()
