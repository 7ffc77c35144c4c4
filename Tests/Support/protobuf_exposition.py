#!/usr/bin/env python3
"""The reference for Prometheus's protobuf exposition, built on Google's own protobuf
runtime, so that the gateway's protobuf reader and writer are tested against an
implementation that is not theirs; and an app that serves it, or the same families as
the text format 0.0.4 a Go exporter would write, by the scraper's Accept header
(e2e/native_histograms.sh puts it behind the gateway).

The exposition is a stream of io.prometheus.client.MetricFamily messages, each preceded
by its length as a varint (Content-Type: application/vnd.google.protobuf;
proto=io.prometheus.client.MetricFamily; encoding=delimited). The schema is
proto/metrics.proto beside this script; protoc compiles it at start into a cache
directory under the system's temporary directory, keyed by the hash of the proto and
protoc's version, and the generated module is imported from there.

Usage (with the runtime from scripts/install-deps.sh test):
    .venv-test/bin/python Tests/Support/protobuf_exposition.py COMMAND

Commands:
  sample      Write the delimited bytes of a fixed, rich set of families to stdout
              (see sample_families: every metric type, exemplars, created timestamps,
              native and classic histograms, a unit, labels a PII policy drops or
              rewrites, two series that differ only in user_id, unknown fields 99).
  decode      Read delimited bytes from stdin and print them as JSON (below).
  text        Write the same families as the text format 0.0.4, rendered as client_golang
              renders them (prometheus/common expfmt's MetricFamilyToText; see
              render_text): what a Go exporter answers a scraper that takes no protobuf.
  serve PORT [REQUEST_LOG]
              Serve HTTP on 127.0.0.1:PORT. GET /metrics negotiates as client_golang
              does (negotiate): the sample's delimited bytes with the protobuf
              Content-Type when the Accept header's preferred clause the app can answer
              is the delimited protobuf stream
              (application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
              encoding=delimited), else the `text` rendering with Content-Type
              text/plain; version=0.0.4; charset=utf-8. Anything else is a 404. PORT 0
              takes a free port. Once listening it prints "listening 127.0.0.1:<port>"
              on stdout. With REQUEST_LOG, each GET /metrics appends a JSON line to that
              file: {"time": <unix seconds>, "path": "<path and query>",
              "accept": "<Accept header, or null>", "answered": "protobuf" | "text"}.
  render      Read delimited bytes from stdin and write them as `text` writes the
              sample: the text format 0.0.4 of those families, as client_golang would
              serve them (so that a protobuf body and a text body can be compared).
  split       Read delimited bytes from stdin and check only the framing; print
              {"messages": N, "bytes": N}.

decode's JSON: a list of families, in stream order, each
  {
    "name": str | null,            null when the field is absent (so are help, type,
    "help": str | null,              unit): presence is compared, not only values
    "type": "COUNTER" | "GAUGE" | "SUMMARY" | "UNTYPED" | "HISTOGRAM"
            | "GAUGE_HISTOGRAM" | null,
    "unit": str | null,
    "fields": {"<number>": "<hex>"},   the family's known fields but metric (4)
    "unknown_fields_hex": "<hex>",     the family's unknown fields ("" when none)
    "metrics": [                       in stream order, each
      {
        "labels": {"<name>": "<value>"},  the last value of a repeated name wins
        "label_pairs": [["<name>", "<value>"], ...],   in order, duplicates kept
        "fields": {"<number>": "<hex>"},  every known field of the Metric, 1 included
        "unknown_fields_hex": "<hex>",    the Metric's unknown fields ("" when none)
        "json": {...}                     MessageToDict(metric), proto field names
      }
    ]
  }
A "<hex>" is the field's records exactly as the protobuf runtime re-serializes the
parsed message: tag, length and value of each record of that field number, in order,
nested unknown fields included (so a value the policy does not touch, e.g. fields "3"
counter or "7" histogram, is compared byte for byte whatever the sender's record order
or packing; repeated fields come out unpacked, as proto2 declares them). Field numbers
are the keys as decimal strings; an absent field has no key. The JSON is strict (NaN
and infinities appear only as MessageToDict's strings "NaN", "Infinity").

A stream that is truncated or malformed (a length past the end, a bad varint, a message
the runtime rejects) makes decode and split exit 1 with the reason on stderr.
"""

import decimal
import hashlib
import http.server
import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from google.protobuf import json_format, timestamp_pb2

PROTO = Path(__file__).resolve().parent / "proto" / "metrics.proto"
CONTENT_TYPE = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

WIRE_VARINT, WIRE_FIXED64, WIRE_LENGTH, WIRE_START_GROUP, WIRE_END_GROUP, WIRE_FIXED32 = range(6)
UNKNOWN_FIELD = 99  # in no message of the schema


class MalformedStream(Exception):
    """The bytes are not a well-formed delimited stream of MetricFamily messages."""


# The schema, compiled by protoc.

def load_schema():
    """Compile metrics.proto (once per proto and protoc version) and import the result."""
    module_dir = compiled_schema_dir()
    spec = importlib.util.spec_from_file_location("metrics_pb2", module_dir / "metrics_pb2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compiled_schema_dir():
    """The cache directory holding metrics_pb2.py, made by protoc if it is not there yet.

    It is compiled into a fresh directory that is then renamed into place, so that
    concurrent runs never see a half-written module."""
    protoc_version = subprocess.run(["protoc", "--version"], check=True, capture_output=True, text=True).stdout
    key = hashlib.sha256(PROTO.read_bytes() + protoc_version.encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"scrapeguard-metrics-pb2-{key}"
    if (target / "metrics_pb2.py").is_file():
        return target
    scratch = Path(tempfile.mkdtemp(prefix="scrapeguard-metrics-pb2-"))
    subprocess.run(["protoc", f"--proto_path={PROTO.parent}", f"--python_out={scratch}", PROTO.name], check=True)
    try:
        scratch.rename(target)
    except OSError:  # another run put it there first
        shutil.rmtree(scratch)
    return target


pb = load_schema()


# The wire format, for framing and for splitting a message into its fields' records.

def encode_varint(value):
    """The base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data, pos):
    """The varint at data[pos:] and the position after it."""
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise MalformedStream(f"varint truncated at byte {pos}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise MalformedStream(f"varint longer than 10 bytes before byte {pos}")


def skip_value(data, pos, wire_type, field_number):
    """The position after a field's value (which starts at pos)."""
    if wire_type == WIRE_VARINT:
        return read_varint(data, pos)[1]
    if wire_type == WIRE_LENGTH:
        length, pos = read_varint(data, pos)
        end = pos + length
    elif wire_type in (WIRE_FIXED64, WIRE_FIXED32):
        end = pos + (8 if wire_type == WIRE_FIXED64 else 4)
    elif wire_type == WIRE_START_GROUP:
        while True:
            tag, pos = read_varint(data, pos)
            if tag == (field_number << 3) | WIRE_END_GROUP:
                return pos
            pos = skip_value(data, pos, tag & 7, tag >> 3)
    else:
        raise MalformedStream(f"wire type {wire_type} at byte {pos}")
    if end > len(data):
        raise MalformedStream(f"field {field_number} runs past the end at byte {pos}")
    return end


def records_by_field(data):
    """A serialized message's records (tag and value bytes), grouped by field number in
    the order written: {number: bytes}."""
    records = {}
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = read_varint(data, pos)
        pos = skip_value(data, pos, tag & 7, tag >> 3)
        records[tag >> 3] = records.get(tag >> 3, b"") + data[start:pos]
    return records


def split_delimited(data):
    """The messages of a delimited stream, as bytes, checking only the framing."""
    messages = []
    pos = 0
    while pos < len(data):
        length, body = read_varint(data, pos)
        if body + length > len(data):
            raise MalformedStream(f"message {len(messages)} at byte {pos} claims {length} bytes, {len(data) - body} remain")
        messages.append(data[body:body + length])
        pos = body + length
    return messages


def delimited(messages):
    """The delimited stream of some messages."""
    serialized = [message.SerializeToString() for message in messages]
    return b"".join(encode_varint(len(body)) + body for body in serialized)


# The sample.

def timestamp(seconds, nanos=0):
    """A google.protobuf.Timestamp."""
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


CREATED = timestamp(1714521600)  # 2024-05-01T00:00:00Z
EXEMPLAR_TIME = timestamp(1714525200, 500_000_000)


def labels(**pairs):
    """LabelPairs in the order given."""
    return [pb.LabelPair(name=name, value=value) for name, value in pairs.items()]


def exemplar(value, **pairs):
    """An exemplar with a trace id, and whatever else is given, at EXEMPLAR_TIME."""
    return pb.Exemplar(label=labels(**pairs), value=value, timestamp=EXEMPLAR_TIME)


def with_unknown_field(message, payload):
    """message with an unknown length-delimited field 99 appended, as a sender with a
    newer schema would write it: the runtime keeps it when parsing and writing."""
    raw = message.SerializeToString() + encode_varint((UNKNOWN_FIELD << 3) | WIRE_LENGTH) + encode_varint(len(payload)) + payload
    return type(message).FromString(raw)


def counter_family():
    """Counters whose labels and exemplar carry personal data; field 99 on the family
    and on a metric."""
    with_user = pb.Metric(
        label=labels(method="GET", code="200", user_id="u-1001", customer="bob@example.org"),
        counter=pb.Counter(
            value=1027,
            exemplar=exemplar(0.046, trace_id="4bf92f3577b34da6", user_id="u-1001"),
            created_timestamp=CREATED,
        ),
    )
    family = pb.MetricFamily(
        name="http_requests_total",
        help="HTTP requests handled, by method and status code.",
        type=pb.COUNTER,
        metric=[
            with_unknown_field(with_user, b"app-private metric annotation"),
            pb.Metric(label=labels(method="POST", code="500"), counter=pb.Counter(value=3, created_timestamp=CREATED)),
        ],
    )
    return with_unknown_field(family, b"app-private family annotation")


def duplicates_family():
    """Two series whose labels differ only in user_id: dropping it makes duplicates."""
    return pb.MetricFamily(
        name="login_attempts_total",
        help="Login attempts, by outcome.",
        type=pb.COUNTER,
        metric=[
            pb.Metric(label=labels(outcome="success", user_id="u-1001"), counter=pb.Counter(value=12)),
            pb.Metric(label=labels(outcome="success", user_id="u-2002"), counter=pb.Counter(value=7)),
        ],
    )


def gauge_family():
    """A gauge with an explicit timestamp."""
    return pb.MetricFamily(
        name="job_queue_depth",
        help="Jobs waiting, by queue.",
        type=pb.GAUGE,
        metric=[pb.Metric(label=labels(queue="emails"), gauge=pb.Gauge(value=17), timestamp_ms=1714525200123)],
    )


def unit_family():
    """A family with a unit (and help)."""
    return pb.MetricFamily(
        name="process_resident_memory_bytes",
        help="Resident memory size in bytes.",
        type=pb.GAUGE,
        unit="bytes",
        metric=[pb.Metric(gauge=pb.Gauge(value=48_234_496))],
    )


def summary_family():
    """A summary with quantiles, and one with no observations yet (NaN quantiles)."""
    quantiles = [(0.5, 0.012), (0.9, 0.087), (0.99, 0.301)]
    return pb.MetricFamily(
        name="rpc_duration_seconds",
        help="RPC latency, by service.",
        type=pb.SUMMARY,
        metric=[
            pb.Metric(
                label=labels(service="billing"),
                summary=pb.Summary(
                    sample_count=4711,
                    sample_sum=98.25,
                    quantile=[pb.Quantile(quantile=q, value=v) for q, v in quantiles],
                    created_timestamp=CREATED,
                ),
            ),
            pb.Metric(
                label=labels(service="search"),
                summary=pb.Summary(
                    sample_count=0,
                    sample_sum=0,
                    quantile=[pb.Quantile(quantile=q, value=float("nan")) for q, _ in quantiles],
                    created_timestamp=CREATED,
                ),
            ),
        ],
    )


def classic_buckets(exemplar_at):
    """Cumulative buckets up to +Inf; the bucket at index exemplar_at has an exemplar
    with a user_id."""
    bounds_and_counts = [(0.05, 120), (0.1, 310), (0.25, 402), (0.5, 431), (1.0, 440), (float("inf"), 442)]
    buckets = [pb.Bucket(upper_bound=bound, cumulative_count=count) for bound, count in bounds_and_counts]
    buckets[exemplar_at].exemplar.CopyFrom(exemplar(0.17, trace_id="00f067aa0ba902b7", user_id="u-2002"))
    return buckets


def native_fields():
    """The fields of an integer native histogram (schema 3) with positive and negative
    buckets, its created timestamp and exemplars (one with a user_id)."""
    # Positive counts 1 3 2 | 5 3, negative 1 2, zero bucket 2: 19 observations.
    return dict(
        schema=3,
        zero_threshold=2.938735877055719e-39,  # 2^-128, client_golang's default
        zero_count=2,
        positive_span=[pb.BucketSpan(offset=-2, length=3), pb.BucketSpan(offset=2, length=2)],
        positive_delta=[1, 2, -1, 3, -2],
        negative_span=[pb.BucketSpan(offset=0, length=2)],
        negative_delta=[1, 1],
        created_timestamp=CREATED,
        exemplars=[
            exemplar(0.0031, trace_id="a3ce929d0e0e4736"),
            exemplar(-0.5, trace_id="5b8aa5a2d2c872e8", user_id="u-1001"),
        ],
    )


def classic_histogram_family():
    """A classic histogram: buckets only."""
    return pb.MetricFamily(
        name="http_request_duration_seconds",
        help="HTTP request latency, by handler.",
        type=pb.HISTOGRAM,
        metric=[
            pb.Metric(
                label=labels(handler="/api/orders"),
                histogram=pb.Histogram(sample_count=442, sample_sum=61.7, bucket=classic_buckets(1), created_timestamp=CREATED),
            )
        ],
    )


def native_histogram_family():
    """A native (exponential) histogram: no classic bucket."""
    return pb.MetricFamily(
        name="rpc_latency_seconds",
        help="RPC latency as a native histogram.",
        type=pb.HISTOGRAM,
        metric=[pb.Metric(label=labels(service="billing"), histogram=pb.Histogram(sample_count=19, sample_sum=3.7, **native_fields()))],
    )


def mixed_histogram_family():
    """A histogram that is classic and native at once, as client_golang writes one with
    both configured."""
    fields = native_fields()
    fields.update(sample_count=442, sample_sum=61.7, bucket=classic_buckets(3))
    return pb.MetricFamily(
        name="grpc_server_handling_seconds",
        help="gRPC handling time, classic and native buckets.",
        type=pb.HISTOGRAM,
        metric=[pb.Metric(label=labels(grpc_method="Charge"), histogram=pb.Histogram(**fields))],
    )


def float_gauge_histogram_family():
    """A gauge histogram with float counts: the *_float and *_count fields."""
    return pb.MetricFamily(
        name="queue_wait_seconds",
        help="Time jobs now queued have waited.",
        type=pb.GAUGE_HISTOGRAM,
        metric=[
            pb.Metric(
                label=labels(queue="emails"),
                histogram=pb.Histogram(
                    sample_count_float=9.5,
                    sample_sum=40.25,
                    bucket=[pb.Bucket(upper_bound=10, cumulative_count_float=4.5), pb.Bucket(upper_bound=float("inf"), cumulative_count_float=9.5)],
                    schema=0,
                    zero_threshold=0.001,
                    zero_count_float=0.5,
                    positive_span=[pb.BucketSpan(offset=1, length=2)],
                    positive_count=[4.0, 5.0],
                ),
            )
        ],
    )


def untyped_family():
    """An untyped metric, without help."""
    return pb.MetricFamily(
        name="legacy_jobs_processed",
        type=pb.UNTYPED,
        metric=[pb.Metric(label=labels(shard="3"), untyped=pb.Untyped(value=42))],
    )


def sample_families():
    """The fixed sample, in the order written."""
    return [
        counter_family(),
        duplicates_family(),
        gauge_family(),
        unit_family(),
        summary_family(),
        classic_histogram_family(),
        native_histogram_family(),
        mixed_histogram_family(),
        float_gauge_histogram_family(),
        untyped_family(),
    ]


def sample_bytes():
    """The sample as a delimited stream."""
    return delimited(sample_families())


# decode.

def field_records(message, skip=()):
    """A message's known fields' records ({"<number>": hex}) and its unknown fields' (hex),
    as the runtime re-serializes them. Fields numbered in skip are left out."""
    known = {f.number for f in message.DESCRIPTOR.fields}
    records = records_by_field(message.SerializeToString(deterministic=True))
    fields = {str(n): r.hex() for n, r in records.items() if n in known and n not in skip}
    unknown = b"".join(r for n, r in records.items() if n not in known)
    return fields, unknown.hex()


def optional_field(message, name):
    """A field's value, or None when it is absent."""
    return getattr(message, name) if message.HasField(name) else None


def describe_metric(metric):
    """A Metric as decode prints it."""
    fields, unknown = field_records(metric)
    return {
        "labels": {pair.name: pair.value for pair in metric.label},
        "label_pairs": [[pair.name, pair.value] for pair in metric.label],
        "fields": fields,
        "unknown_fields_hex": unknown,
        "json": json_format.MessageToDict(metric, preserving_proto_field_name=True),
    }


def describe_family(family):
    """A MetricFamily as decode prints it."""
    fields, unknown = field_records(family, skip={pb.MetricFamily.METRIC_FIELD_NUMBER})
    return {
        "name": optional_field(family, "name"),
        "help": optional_field(family, "help"),
        "type": pb.MetricType.Name(family.type) if family.HasField("type") else None,
        "unit": optional_field(family, "unit"),
        "fields": fields,
        "unknown_fields_hex": unknown,
        "metrics": [describe_metric(metric) for metric in family.metric],
    }


def parse_family(index, data):
    """One message of the stream, parsed; MalformedStream if the runtime rejects it or a
    string in it is not UTF-8."""
    try:
        family = pb.MetricFamily.FromString(data)
    except Exception as error:  # DecodeError
        raise MalformedStream(f"message {index} ({len(data)} bytes): {type(error).__name__}: {error}") from error
    check_utf8(family, f"message {index}")
    return family


def check_utf8(message, where):
    """MalformedStream if a string field anywhere in message is not UTF-8: the proto2
    runtime hands such a string over as bytes instead of failing."""
    for field, value in message.ListFields():
        values = value if field.label == field.LABEL_REPEATED else [value]
        for item in values:
            if field.type == field.TYPE_STRING and isinstance(item, bytes):
                raise MalformedStream(f"{where}: {field.full_name} is not UTF-8: {item!r}")
            if field.type == field.TYPE_MESSAGE:
                check_utf8(item, where)


def decode(data):
    """The JSON-ready description of a delimited stream."""
    return [describe_family(parse_family(i, m)) for i, m in enumerate(split_delimited(data))]


# text: the text format 0.0.4 exactly as client_golang writes it, after prometheus/common
# expfmt/text_create.go (MetricFamilyToText, writeSample, writeNameAndLabelPairs,
# writeEscapedString, writeFloat, writeName). The text format has no unit, created
# timestamp, exemplar or native bucket: they are left out, as there.

LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")  # model.LegacyValidation's metric names
TEXT_TYPES = {
    pb.COUNTER: "counter",
    pb.GAUGE: "gauge",
    pb.SUMMARY: "summary",
    pb.UNTYPED: "untyped",
    pb.HISTOGRAM: "histogram",
    pb.GAUGE_HISTOGRAM: "histogram",  # the text format has no gauge histogram
}


def go_float(value):
    """A float as writeFloat writes it: 1, 0, -1, NaN, +Inf, -Inf by hand, anything else
    as Go's strconv.FormatFloat(f, 'g', -1, 64): the shortest digits that read back as
    the same float (Python's repr finds the same), in exponent form (at least two
    exponent digits) when the decimal exponent is below -4 or at least 6 (so
    48234496 is 4.8234496e+07, 1e6 is 1e+06, 0.0001 is 0.0001)."""
    if value == 1:
        return "1"
    if value == 0:
        return "0"
    if value == -1:
        return "-1"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign, digit_tuple, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # digits[:point] are the integer part
    exp = point - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    elif point <= 0:
        text = "0." + "0" * -point + digits
    elif point >= len(digits):
        text = digits + "0" * (point - len(digits))
    else:
        text = digits[:point] + "." + digits[point:]
    return ("-" if sign else "") + text


def escape_text(value, quote):
    """writeEscapedString: backslash and newline escaped, and the double quote in label
    values and quoted names (quote=True); HELP escapes no quote."""
    value = value.replace("\\", "\\\\").replace("\n", "\\n")
    return value.replace('"', '\\"') if quote else value


def text_name(name):
    """writeName: a legacy-valid name as it is, any other double-quoted and escaped."""
    return name if LEGACY_NAME.match(name) else '"' + escape_text(name, True) + '"'


def text_sample(name, metric, value, extra_label=None):
    """writeSample: name{labels} value [timestamp_ms]; extra_label is (name, float),
    the le of a bucket or the quantile of a summary, written last with writeFloat."""
    pairs = [f'{text_name(pair.name)}="{escape_text(pair.value, True)}"' for pair in metric.label]
    if extra_label:
        pairs.append(f'{extra_label[0]}="{go_float(extra_label[1])}"')
    if LEGACY_NAME.match(name):
        head = name + ("{" + ",".join(pairs) + "}" if pairs else "")
    else:  # a name that is not legacy-valid goes inside the braces, first
        head = "{" + ",".join([text_name(name)] + pairs) + "}"
    line = f"{head} {go_float(value)}"
    if metric.HasField("timestamp_ms"):
        line += f" {metric.timestamp_ms}"
    return line + "\n"


def float_or_int(float_value, int_value):
    """A count as text_create.go takes it: the float field when it is not 0, else the
    integer one."""
    return float_value if float_value != 0 else float(int_value)


def family_text(family):
    """MetricFamilyToText of one family. ValueError where it returns an error (no
    metric, no name, a metric without the family type's value)."""
    name = family.name
    if not family.metric:
        raise ValueError(f"MetricFamily has no metrics: {name!r}")
    if not name:
        raise ValueError("MetricFamily has no name")
    out = []
    if family.HasField("help"):  # present, even if empty
        out.append(f"# HELP {text_name(name)} {escape_text(family.help, False)}\n")
    out.append(f"# TYPE {text_name(name)} {TEXT_TYPES[family.type]}\n")
    value_field = {pb.COUNTER: "counter", pb.GAUGE: "gauge", pb.UNTYPED: "untyped", pb.SUMMARY: "summary",
                   pb.HISTOGRAM: "histogram", pb.GAUGE_HISTOGRAM: "histogram"}[family.type]
    for metric in family.metric:
        if not metric.HasField(value_field):
            raise ValueError(f"expected {value_field} in metric {name}")
        if value_field in ("counter", "gauge", "untyped"):
            out.append(text_sample(name, metric, getattr(metric, value_field).value))
        elif value_field == "summary":
            summary = metric.summary
            for quantile in summary.quantile:
                out.append(text_sample(name, metric, quantile.value, ("quantile", quantile.quantile)))
            out.append(text_sample(name + "_sum", metric, summary.sample_sum))
            out.append(text_sample(name + "_count", metric, float(summary.sample_count)))
        else:
            histogram = metric.histogram
            count = float_or_int(histogram.sample_count_float, histogram.sample_count)
            inf_seen = False
            for bucket in histogram.bucket:
                value = float_or_int(bucket.cumulative_count_float, bucket.cumulative_count)
                out.append(text_sample(name + "_bucket", metric, value, ("le", bucket.upper_bound)))
                inf_seen = inf_seen or bucket.upper_bound == math.inf
            if not inf_seen:  # a native-only histogram is its count, in le="+Inf"
                out.append(text_sample(name + "_bucket", metric, count, ("le", math.inf)))
            out.append(text_sample(name + "_sum", metric, histogram.sample_sum))
            out.append(text_sample(name + "_count", metric, count))
    return "".join(out)


def render_text(families):
    """The text format 0.0.4 of some families, in the order given, as bytes."""
    return "".join(family_text(family) for family in families).encode("utf-8")


def sample_text():
    """The sample as client_golang's text format."""
    return render_text(sample_families())


# serve.

def parse_accept(header):
    """An Accept header's clauses as goautoneg.ParseAccept reads them, in the order
    client_golang tries them: [(type/subtype, {param: value})], highest q first (a
    clause without q is 1; equal q keep their order, a wildcard after a concrete type).
    Unlike goautoneg, a clause with q=0 (not acceptable) is left out."""
    clauses = []
    for index, part in enumerate((header or "").split(",")):
        media_range, *params = part.strip().split(";")
        kind = media_range.strip().lower()
        if kind == "*":
            kind = "*/*"
        if kind.count("/") != 1:
            continue
        quality, parameters = 1.0, {}
        for param in params:
            key, eq, value = param.partition("=")
            if not eq:
                continue
            key, value = key.strip().lower(), value.strip().strip('"')
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
            else:
                parameters[key] = value
        if quality > 0:
            main, sub = kind.split("/")
            clauses.append(((-quality, main == "*", sub == "*", index), kind, parameters))
    return [(kind, parameters) for _, kind, parameters in sorted(clauses)]


def negotiate(accept):
    """"protobuf" or "text", as prometheus/common's expfmt.Negotiate (the released one
    client_golang's promhttp has long used) chooses between the two formats this app
    writes: the first clause (in parse_accept's order) that is the delimited protobuf
    MetricFamily stream or text/plain (version 0.0.4 or none) decides; no such clause
    (OpenMetrics only, */*, no Accept): text. So Prometheus with native histograms on
    (protobuf first) gets protobuf, and without (text/plain;version=0.0.4;q=0.5) text."""
    for kind, params in parse_accept(accept):
        if (kind == "application/vnd.google.protobuf" and params.get("proto") == "io.prometheus.client.MetricFamily"
                and params.get("encoding") == "delimited"):
            return "protobuf"
        if kind == "text/plain" and params.get("version", "0.0.4") in ("0.0.4", ""):
            return "text"
    return "text"


class MetricsHandler(http.server.BaseHTTPRequestHandler):
    """Answers GET /metrics with the sample, in the format the Accept header asks for."""

    bodies = {}  # "protobuf" and "text": (Content-Type, bytes)
    request_log = None
    log_lock = threading.Lock()

    def do_GET(self):
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        accept = self.headers.get("Accept")
        answered = negotiate(accept)
        content_type, body = self.bodies[answered]
        if self.request_log:
            line = json.dumps({"time": round(time.time(), 3), "path": self.path, "accept": accept, "answered": answered})
            with self.log_lock, open(self.request_log, "a", encoding="utf-8") as log:
                log.write(line + "\n")
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        """Quiet: a test's output is not the place for an access log (REQUEST_LOG is)."""


def serve(port, request_log=None):
    """Serve the sample on 127.0.0.1:port until killed."""
    MetricsHandler.bodies = {"protobuf": (CONTENT_TYPE, sample_bytes()), "text": (TEXT_CONTENT_TYPE, sample_text())}
    MetricsHandler.request_log = request_log
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), MetricsHandler)
    server.daemon_threads = True
    print(f"listening 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


# The command line.

def main(argv):
    command = argv[1] if len(argv) > 1 else None
    try:
        if command == "sample" and len(argv) == 2:
            sys.stdout.buffer.write(sample_bytes())
        elif command == "decode" and len(argv) == 2:
            json.dump(decode(sys.stdin.buffer.read()), sys.stdout, indent=2, allow_nan=False)
            print()
        elif command == "split" and len(argv) == 2:
            data = sys.stdin.buffer.read()
            print(json.dumps({"messages": len(split_delimited(data)), "bytes": len(data)}))
        elif command == "text" and len(argv) == 2:
            sys.stdout.buffer.write(sample_text())
        elif command == "render" and len(argv) == 2:
            families = [parse_family(i, m) for i, m in enumerate(split_delimited(sys.stdin.buffer.read()))]
            sys.stdout.buffer.write(render_text(families))
        elif command == "serve" and len(argv) in (3, 4) and argv[2].isdigit():
            return serve(int(argv[2]), argv[3] if len(argv) == 4 else None)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except MalformedStream as error:
        print(f"malformed protobuf exposition: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
