#!/usr/bin/env python3
"""Holds the gateway's protobuf output against the app's, under the policy the
integration test configures: label `user_id` dropped (on metrics and exemplars), any
label value holding an e-mail address redacted to `redacted`.

Usage: protobuf_policy_check.py APP.bin GATEWAY.bin

Both files are decoded by protobuf_exposition.py (Google's protobuf runtime, the
schema written from client_model's field numbers). The policy is applied to the app's
side here, in Python, and the result must equal the gateway's, family by family and
metric by metric:
  - the same families in the same order, each with the same known fields (name, help,
    type, unit) and unknown fields, byte for byte;
  - each metric's labels as the policy leaves them; a metric whose labels then equal
    an earlier one's in its family is gone (the gateway's duplicate check);
  - every other field of a metric byte for byte (its value, timestamps, native
    histogram spans and deltas, unknown fields), except that a counter's or
    histogram's exemplars carry the policy's labels: those two fields are compared
    as MessageToDict with the policy applied to the exemplars' labels.
Every difference is printed; the exit status is 1 if there is any, 0 otherwise.
"""

import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def decode(path):
    with open(path, "rb") as stream:
        result = subprocess.run([sys.executable, os.path.join(HERE, "protobuf_exposition.py"), "decode"],
                                stdin=stream, capture_output=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{path}: decode failed: {result.stderr.decode()}")
    return json.loads(result.stdout)


def policy_labels(pairs):
    """The labels as the policy leaves them, as a dict."""
    return {name: ("redacted" if EMAIL.search(value) else value) for name, value in pairs if name != "user_id" and value}


def policy_exemplars(node):
    """MessageToDict of a counter or histogram with the policy applied to every
    exemplar's labels (wherever exemplars sit: the counter's, the buckets', the
    native histogram's)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "label" and isinstance(value, list):
                kept = [{"name": l["name"], "value": ("redacted" if EMAIL.search(l.get("value", "")) else l.get("value", ""))}
                        for l in value if l.get("name") != "user_id"]
                out[key] = sorted(kept, key=lambda l: l["name"])
            else:
                out[key] = policy_exemplars(value)
        return out
    if isinstance(node, list):
        return [policy_exemplars(v) for v in node]
    return node


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    app, gateway = decode(sys.argv[1]), decode(sys.argv[2])
    problems = []
    if [f["name"] for f in app] != [f["name"] for f in gateway]:
        problems.append(f"families: app {[f['name'] for f in app]} gateway {[f['name'] for f in gateway]}")
    for expected_family, family in zip(app, gateway):
        name = expected_family["name"]
        for key in ("help", "type", "unit", "fields", "unknown_fields_hex"):
            if expected_family[key] != family[key]:
                problems.append(f"{name}: family {key}: app {expected_family[key]!r} gateway {family[key]!r}")
        expected_metrics, seen = [], []
        for metric in expected_family["metrics"]:
            labels = policy_labels(metric["label_pairs"])
            if labels in seen:
                continue  # a duplicate once the policy is applied
            seen.append(labels)
            expected_metrics.append((labels, metric))
        if len(expected_metrics) != len(family["metrics"]):
            problems.append(f"{name}: {len(family['metrics'])} metrics, expected {len(expected_metrics)}")
        for (labels, expected), metric in zip(expected_metrics, family["metrics"]):
            where = f"{name}{labels}"
            if metric["labels"] != labels:
                problems.append(f"{where}: labels {metric['labels']}")
            if expected["unknown_fields_hex"] != metric["unknown_fields_hex"]:
                problems.append(f"{where}: unknown fields differ")
            numbers = set(expected["fields"]) | set(metric["fields"])
            for number in sorted(numbers - {"1"}):
                if number in ("3", "7"):
                    key = "counter" if number == "3" else "histogram"
                    want = policy_exemplars(expected["json"].get(key))
                    got = policy_exemplars(metric["json"].get(key))
                    if want != got:
                        problems.append(f"{where}: {key}: app (policy applied) {json.dumps(want)} gateway {json.dumps(got)}")
                    if not json.dumps(expected["json"].get(key)).count("label") and expected["fields"].get(number) != metric["fields"].get(number):
                        problems.append(f"{where}: field {number} (no exemplar labels) not byte-identical")
                elif expected["fields"].get(number) != metric["fields"].get(number):
                    problems.append(f"{where}: field {number}: app {expected['fields'].get(number)} gateway {metric['fields'].get(number)}")
    for problem in problems:
        print(problem)
    print(f"protobuf policy check: {len(app)} families, {sum(len(f['metrics']) for f in gateway)} metrics out, "
          f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
