#!/usr/bin/env python3
"""Parse an exposition from stdin with prometheus_client's own parsers and print its
samples as JSON: [[name, {label: value}, value], ...], in the order written.

Usage: parse_exposition.py CONTENT_TYPE
The parser is chosen from the media type, as Prometheus chooses it:
application/openmetrics-text -> prometheus_client.openmetrics.parser (strict),
anything else -> prometheus_client.parser (the text format). A parse error exits 1
with the parser's message on stderr.
"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as text_families


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    media_type = sys.argv[1].split(";")[0].strip().lower()
    body = sys.stdin.buffer.read().decode("utf-8")
    parse = openmetrics_families if media_type == "application/openmetrics-text" else text_families
    try:
        samples = [[s.name, dict(s.labels), s.value] for family in parse(body) for s in family.samples]
    except Exception as error:  # the parsers raise ValueError and others
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    json.dump(samples, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
