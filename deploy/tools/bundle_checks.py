#!/usr/bin/env python3
"""Checks on the rendered Kubernetes bundle, called by deploy/test.sh.

Each subcommand reads `kubectl kustomize` output and exits non-zero with a message
naming the object and field when a check fails:

  split       RENDERED OUTDIR      built-in kinds -> OUTDIR/builtin.yaml (for
                                   kubernetes-validate); counts per kind
  crd         RENDERED CRD_DIR     ServiceMonitor / PrometheusRule / PodMonitor
                                   against their CRDs' openAPIV3Schema, unknown
                                   fields refused
  certmanager RENDERED [--expect-none]
                                   cert-manager Issuer / Certificate against the
                                   cloudcoil models, unknown fields refused (or:
                                   none may be left)
  rules       RENDERED OUT         PrometheusRule spec.groups -> a Prometheus rule file
  mutants     RULES TESTFILE       break each rule in turn; every broken copy must
                                   fail `promtool test rules`
  configs     RENDERED OUTDIR TLSDIR
                                   web-config.yml (TLS paths moved to TLSDIR),
                                   scrapeguard.yml and the ServiceMonitor's
                                   basic-auth credentials
  wiring      RENDERED [--server-cert F --client-cert F] [--base-web-config F]
                                   cross-object consistency (ports, names, SANs,
                                   Secrets, credentials, hardening)
  skips       SKIPFILE FRAMEWORK   checkov skip ids for a framework, each with a reason
  serve-args  RENDERED             the sidecar's args, one per line
"""

from __future__ import annotations

import argparse
import base64
import copy
import ipaddress
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import yaml

CRD_GROUPS = {"monitoring.coreos.com", "cert-manager.io"}
SIDECAR = "scrapeguard"
BINARY = "/usr/local/bin/scrapeguard"


class CheckFailed(Exception):
    pass


def load(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def group_of(doc: dict[str, Any]) -> str:
    api = doc.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def ref(doc: dict[str, Any]) -> str:
    md = doc.get("metadata", {})
    return f"{doc.get('kind')}/{md.get('name')}"


def find(docs, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d.get("kind") == kind and (name is None or d["metadata"].get("name") == name)
    ]


def one(docs, kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    if len(found) != 1:
        raise CheckFailed(f"expected exactly one {kind}{'/' + name if name else ''}, found {len(found)}")
    return found[0]


# --------------------------------------------------------------------- split
def cmd_split(args) -> None:
    docs = load(args.rendered)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    builtin = [d for d in docs if group_of(d) not in CRD_GROUPS]
    with open(out / "builtin.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump_all(builtin, f, sort_keys=False)
    kinds: dict[str, int] = {}
    for d in docs:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    print(", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))


# ----------------------------------------------------------------------- crd
def strict_schema(schema: Any) -> Any:
    """An openAPIV3Schema made strict the way `kubectl apply --validate=strict` is:
    objects with declared properties refuse undeclared ones, unless the schema says
    x-kubernetes-preserve-unknown-fields. `nullable` becomes a JSON-schema null type."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    s = {k: strict_schema(v) for k, v in schema.items()}
    if (
        s.get("type") == "object"
        and "properties" in s
        and "additionalProperties" not in s
        and not s.get("x-kubernetes-preserve-unknown-fields")
    ):
        s["additionalProperties"] = False
    if s.get("nullable") and isinstance(s.get("type"), str):
        s["type"] = [s["type"], "null"]
    return s


METADATA_KEYS = {"name", "namespace", "labels", "annotations"}


def check_metadata(doc: dict[str, Any]) -> list[str]:
    errors = []
    md = doc.get("metadata") or {}
    extra = set(md) - METADATA_KEYS
    if extra:
        errors.append(f"metadata: unexpected keys {sorted(extra)}")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", str(md.get("name", ""))):
        errors.append(f"metadata.name {md.get('name')!r} is not a DNS subdomain name")
    for key in ("labels", "annotations"):
        for k, v in (md.get(key) or {}).items():
            if not isinstance(v, str):
                errors.append(f"metadata.{key}.{k} must be a string, got {type(v).__name__}")
    return errors


def cmd_crd(args) -> None:
    import jsonschema

    crds: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(Path(args.crd_dir).glob("*.yaml")):
        for crd in load(str(path)):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    crds[key] = version["schema"]["openAPIV3Schema"]
    checked = 0
    failures = []
    for doc in load(args.rendered):
        if group_of(doc) != "monitoring.coreos.com":
            continue
        key = (doc["apiVersion"], doc["kind"])
        if key not in crds:
            failures.append(f"{ref(doc)}: no CRD schema for {key[0]} {key[1]} in {args.crd_dir}")
            continue
        schema = strict_schema(crds[key])
        # metadata is `type: object` in every CRD; the API server checks it as
        # ObjectMeta, done here by check_metadata.
        schema["properties"]["metadata"] = {"type": "object"}
        validator = jsonschema.Draft7Validator(schema)
        errors = [
            f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in validator.iter_errors(doc)
        ] + check_metadata(doc)
        for e in errors:
            failures.append(f"{ref(doc)}: {e}")
        checked += 1
    if failures:
        raise CheckFailed("\n".join(failures))
    if checked == 0:
        raise CheckFailed("no monitoring.coreos.com objects found to validate")
    print(f"{checked} monitoring.coreos.com object(s) valid against their CRD schemas")


# --------------------------------------------------------------- certmanager
def unknown_fields(given: Any, parsed: Any, path: str = "") -> Iterator[str]:
    """Keys present in the input but dropped by the model (the models ignore
    unknown fields instead of refusing them)."""
    if isinstance(given, dict) and isinstance(parsed, dict):
        for k, v in given.items():
            if k not in parsed:
                yield f"{path}{k}"
            else:
                yield from unknown_fields(v, parsed[k], f"{path}{k}.")
    elif isinstance(given, list) and isinstance(parsed, list):
        for i, (g, p) in enumerate(zip(given, parsed)):
            yield from unknown_fields(g, p, f"{path}{i}.")


def cmd_certmanager(args) -> None:
    from cloudcoil.models.cert_manager import v1 as cm

    docs = [d for d in load(args.rendered) if group_of(d) == "cert-manager.io"]
    if args.expect_none:
        if docs:
            raise CheckFailed("cert-manager objects left in an overlay meant for clusters without it: "
                              + ", ".join(ref(d) for d in docs))
        print("no cert-manager.io objects left (the overlay is for clusters without cert-manager)")
        return
    failures = []
    for doc in docs:
        if doc["apiVersion"] != "cert-manager.io/v1":
            failures.append(f"{ref(doc)}: apiVersion {doc['apiVersion']} is not cert-manager.io/v1")
            continue
        model = getattr(cm, doc["kind"], None)
        if model is None:
            failures.append(f"{ref(doc)}: no model for kind {doc['kind']}")
            continue
        try:
            obj = model.model_validate(doc)
        except Exception as e:  # pydantic.ValidationError
            failures.append(f"{ref(doc)}: {e}")
            continue
        dumped = obj.model_dump(mode="json", by_alias=True, exclude_unset=True)
        for field in unknown_fields(doc, dumped):
            if not field.startswith("metadata."):
                failures.append(f"{ref(doc)}: unknown field {field}")
        failures += [f"{ref(doc)}: {e}" for e in check_metadata(doc)]
    if failures:
        raise CheckFailed("\n".join(failures))
    if not docs:
        raise CheckFailed("no cert-manager.io objects to validate")
    print(f"{len(docs)} cert-manager.io object(s) valid")


# --------------------------------------------------------------------- rules
def cmd_rules(args) -> None:
    rules = find(load(args.rendered), "PrometheusRule")
    if not rules:
        raise CheckFailed("no PrometheusRule in the rendered manifests")
    groups = [g for r in rules for g in r["spec"]["groups"]]
    with open(args.out, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    n = sum(len(g["rules"]) for g in groups)
    print(f"{n} rules in {len(groups)} groups")


COMPARISONS = [(" > ", " < "), (" < ", " > "), (" >= ", " <= "), (" <= ", " >= "), (" == ", " != ")]


def mutants(rule_file: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for gi, group in enumerate(rule_file["groups"]):
        for ri, rule in enumerate(group["rules"]):
            name = rule.get("alert") or rule.get("record")

            def variant(change):
                m = copy.deepcopy(rule_file)
                change(m["groups"][gi]["rules"][ri])
                return m

            # 1. A rule that computes something else entirely.
            yield f"{name}: expr replaced by vector(1)", variant(lambda r: r.__setitem__("expr", "vector(1)"))
            # 2. An alert that fires at once instead of after `for`.
            if "for" in rule:
                yield f"{name}: `for` removed", variant(lambda r: r.pop("for"))
            # 3. A threshold turned around.
            expr = rule["expr"]
            for old, new in COMPARISONS:
                if old in expr:
                    yield (
                        f"{name}: first '{old.strip()}' flipped to '{new.strip()}'",
                        variant(lambda r, o=old, n=new: r.__setitem__("expr", r["expr"].replace(o, n, 1))),
                    )
                    break


def cmd_mutants(args) -> None:
    rule_file = yaml.safe_load(Path(args.rules).read_text(encoding="utf-8"))
    test_file = Path(args.testfile)
    survivors = []
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        test_copy = Path(tmp) / test_file.name
        test_copy.write_text(test_file.read_text(encoding="utf-8"), encoding="utf-8")
        jobs = []
        for i, (description, mutant) in enumerate(mutants(rule_file)):
            # promtool resolves rule_files relative to the test file: one folder
            # per mutant, so that they can run side by side.
            folder = Path(tmp) / f"m{i}"
            folder.mkdir()
            (folder / Path(args.rules).name).write_text(yaml.safe_dump(mutant, sort_keys=False), encoding="utf-8")
            (folder / test_file.name).write_text(test_copy.read_text(encoding="utf-8"), encoding="utf-8")
            jobs.append((description, folder / test_file.name))
        total = len(jobs)

        def run(job):
            result = subprocess.run(
                [args.promtool, "test", "rules", str(job[1])],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            return job[0], result.returncode

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for description, code in pool.map(run, jobs):
                if code == 0:
                    survivors.append(description)
    if survivors:
        raise CheckFailed(
            f"{len(survivors)} of {total} broken rule files still pass the tests:\n  "
            + "\n  ".join(survivors)
        )
    print(f"all {total} broken variants of the rules fail the tests")


# ------------------------------------------------------------------- configs
def secret_data(doc: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode("utf-8") for k, v in (doc.get("data") or {}).items()}
    data.update(doc.get("stringData") or {})
    return data


def sidecar(docs) -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    for c in pod["containers"]:
        if c["name"] == SIDECAR:
            return deployment, c
    raise CheckFailed(f"{ref(deployment)}: no container named {SIDECAR}")


def flags(container: dict[str, Any]) -> dict[str, str]:
    out = {}
    for a in container.get("args", [])[1:]:
        m = re.fullmatch(r"--([a-z.-]+)=(.*)", a)
        if not m:
            raise CheckFailed(f"container {container['name']}: argument {a!r} is not --flag=value")
        out[m.group(1)] = m.group(2)
    return out


def mounted_source(docs, file_path: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(volume, key, mount) serving file_path in the sidecar."""
    deployment, c = sidecar(docs)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
    for m in c.get("volumeMounts", []):
        prefix = m["mountPath"].rstrip("/") + "/"
        if file_path.startswith(prefix):
            return volumes[m["name"]], file_path[len(prefix):], m
    raise CheckFailed(f"{file_path}: no volume of container {SIDECAR} is mounted above it")


def object_for_volume(docs, volume: dict[str, Any]) -> dict[str, Any]:
    if "configMap" in volume:
        return one(docs, "ConfigMap", volume["configMap"]["name"])
    if "secret" in volume:
        return one(docs, "Secret", volume["secret"]["secretName"])
    raise CheckFailed(f"volume {volume['name']}: neither a ConfigMap nor a Secret")


def cmd_configs(args) -> None:
    docs = load(args.rendered)
    _, c = sidecar(docs)
    f = flags(c)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for flag, name in (("web.config.file", "web-config.yml"), ("config.file", "scrapeguard.yml")):
        volume, key, _ = mounted_source(docs, f[flag])
        obj = object_for_volume(docs, volume)
        data = secret_data(obj) if obj["kind"] == "Secret" else obj["data"]
        if key not in data:
            raise CheckFailed(f"{ref(obj)} has no key {key!r} for {f[flag]}")
        text = data[key]
        if name == "web-config.yml":
            tls_dir = Path(args.tlsdir)

            def move(m):
                return f"{m.group(1)}{tls_dir / Path(m.group(2)).name}"

            text = re.sub(r"(\b(?:cert_file|key_file|client_ca_file):\s*)(\S+)", move, text)
        (out / name).write_text(text, encoding="utf-8")
    # The credentials the ServiceMonitor makes Prometheus send.
    sm = one(docs, "ServiceMonitor")
    auth = sm["spec"]["endpoints"][0].get("basicAuth") or {}
    for part in ("username", "password"):
        sel = auth.get(part)
        if sel:
            value = secret_data(one(docs, "Secret", sel["name"]))[sel["key"]]
            (out / f"basic-auth.{part}").write_text(value, encoding="utf-8")
    print(f"{out}/web-config.yml, {out}/scrapeguard.yml, {out}/basic-auth.*")


# --------------------------------------------------------------------- wiring
def duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise CheckFailed(f"not a duration: {text!r}")
    return total


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def cert_sans(path: str) -> tuple[list[str], list[str]]:
    """(DNS names and IPs, URIs) of a PEM certificate, via the openssl CLI."""
    text = subprocess.run(
        ["openssl", "x509", "-in", path, "-noout", "-ext", "subjectAltName"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    names, uris = [], []
    for item in re.split(r",\s*", " ".join(text.splitlines()[1:]).strip()):
        kind, _, value = item.partition(":")
        if kind in ("DNS", "IP Address"):
            names.append(value)
        elif kind == "URI":
            uris.append(value)
    return names, uris


class Wiring:
    def __init__(self, docs):
        self.docs = docs
        self.failures: list[str] = []
        self.passed = 0

    def expect(self, ok: bool, message: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failures.append(message)


def cmd_wiring(args) -> None:
    docs = load(args.rendered)
    w = Wiring(docs)
    E = w.expect

    # Namespaces: one for everything, and the Namespace object (if any) is it.
    namespaced = [d for d in docs if d["kind"] not in ("Namespace",)]
    spaces = {d["metadata"].get("namespace") for d in namespaced}
    E(len(spaces) == 1 and None not in spaces,
      f"namespaced objects must share one namespace, found {sorted(map(str, spaces))}: "
      + ", ".join(f"{ref(d)}={d['metadata'].get('namespace')}" for d in namespaced if d["metadata"].get("namespace") != next(iter(spaces))))
    ns = next(iter(spaces))
    for n in find(docs, "Namespace"):
        E(n["metadata"]["name"] == ns, f"Namespace {n['metadata']['name']} is not the objects' namespace {ns}")

    deployment, sc = sidecar(docs)
    pod = deployment["spec"]["template"]["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    E(matches(deployment["spec"]["selector"]["matchLabels"], pod_labels), "Deployment selector does not match its pod labels")

    # The sidecar's command line.
    E(sc.get("command") == [BINARY], f"sidecar command must be [{BINARY}], is {sc.get('command')}")
    E((sc.get("args") or [None])[0] == "serve", "sidecar args must start with `serve`")
    f = flags(sc)
    known = {"web.config.file", "config.file", "web.listen-address", "upstream.url", "health.listen-address",
             "web.shutdown-timeout", "log.level", "log.format"}
    E(set(f) <= known, f"sidecar flags not in scrapeguard serve's interface: {sorted(set(f) - known)}")
    E({"web.config.file", "config.file"} <= set(f), "sidecar needs --web.config.file and --config.file")
    ports = {p["name"]: p["containerPort"] for p in sc.get("ports", [])}
    E(port_of(f.get("web.listen-address", ":9443")) == ports.get("https-metrics"),
      f"--web.listen-address port differs from containerPort https-metrics ({ports.get('https-metrics')})")
    E(port_of(f.get("health.listen-address", ":9444")) == ports.get("health"),
      f"--health.listen-address port differs from containerPort health ({ports.get('health')})")
    shutdown = duration_seconds(f.get("web.shutdown-timeout", "15s"))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    E(grace > shutdown, f"terminationGracePeriodSeconds {grace} must exceed --web.shutdown-timeout {shutdown}s")
    E(f.get("log.format", "logfmt") in ("logfmt", "json"), "--log.format must be logfmt or json")

    # Probes on the health port.
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (sc.get(probe) or {}).get("httpGet") or {}
        E(get.get("path") == path and get.get("port") in ("health", ports.get("health")),
          f"sidecar {probe} must GET {path} on the health port, is {get}")

    # Hardening, every container.
    for c in pod["containers"]:
        s = c.get("securityContext") or {}
        name = c["name"]
        E(s.get("runAsNonRoot") is True or pod.get("securityContext", {}).get("runAsNonRoot") is True,
          f"{name}: runAsNonRoot")
        E(s.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation must be false")
        E(s.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem must be true")
        E((s.get("capabilities") or {}).get("drop") == ["ALL"], f"{name}: capabilities must drop ALL")
        seccomp = (s.get("seccompProfile") or pod.get("securityContext", {}).get("seccompProfile") or {}).get("type")
        E(seccomp == "RuntimeDefault", f"{name}: seccompProfile must be RuntimeDefault")
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            E({"cpu", "memory"} <= set(res.get(kind) or {}), f"{name}: resources.{kind} needs cpu and memory")
    E((sc.get("securityContext") or {}).get("runAsUser") == 65532, "sidecar must run as uid 65532")

    # Config files come from the right kinds of object, TLS from a folder mount.
    wc_volume, _, _ = mounted_source(docs, f["web.config.file"])
    E("secret" in wc_volume, "--web.config.file must come from a Secret (it holds password hashes)")
    cfg_volume, _, _ = mounted_source(docs, f["config.file"])
    E("configMap" in cfg_volume, "--config.file must come from a ConfigMap")
    wc_obj = object_for_volume(docs, wc_volume)
    web_config = yaml.safe_load(secret_data(wc_obj)[Path(f["web.config.file"]).name])
    cfg_obj = object_for_volume(docs, cfg_volume)
    config = yaml.safe_load(cfg_obj["data"][Path(f["config.file"]).name])

    tls = web_config.get("tls_server_config") or {}
    tls_secret_names = set()
    for key in ("cert_file", "key_file", "client_ca_file"):
        volume, item, mount = mounted_source(docs, tls[key])
        E("subPath" not in mount, f"{tls[key]}: mounted with subPath, Secret updates would never reach it")
        E("secret" in volume, f"{tls[key]}: must come from a Secret")
        if "secret" in volume:
            tls_secret_names.add(volume["secret"]["secretName"])
            E(item in ("tls.crt", "tls.key", "ca.crt"), f"{tls[key]}: {item} is not a key a TLS Secret has")
    E(tls.get("client_auth_type") == "RequireAndVerifyClientCert", "client_auth_type must be RequireAndVerifyClientCert")
    allowed_sans = tls.get("client_allowed_sans") or []
    E(bool(allowed_sans), "client_allowed_sans must not be empty")

    certificates = {c["spec"]["secretName"]: c for c in find(docs, "Certificate")}
    secrets = {s["metadata"]["name"]: s for s in find(docs, "Secret")}

    def secret_exists(name: str, keys: list[str]) -> bool:
        if name in certificates:
            return set(keys) <= {"tls.crt", "tls.key", "ca.crt"}
        return name in secrets and set(keys) <= set(secret_data(secrets[name]))

    for name in tls_secret_names:
        E(secret_exists(name, ["tls.crt", "tls.key", "ca.crt"]), f"TLS Secret {name} is neither rendered nor issued by a Certificate")

    # Upstream on loopback, where the app listens.
    upstream = (config.get("upstream") or {}).get("url", "")
    m = re.fullmatch(r"http://(127\.0\.0\.1|localhost|\[::1\]):(\d+)(/.*)", upstream)
    E(bool(m), f"upstream.url {upstream!r} must be http on loopback")
    app = [c for c in pod["containers"] if c["name"] != SIDECAR]
    env = {e["name"]: e.get("value") for c in app for e in c.get("env", [])}
    if m:
        E(env.get("EXPORTER_PORT") == m.group(2), f"upstream port {m.group(2)} != app's EXPORTER_PORT {env.get('EXPORTER_PORT')}")
    E(env.get("EXPORTER_ADDR") == "127.0.0.1", "the app must bind its metrics to 127.0.0.1 (EXPORTER_ADDR)")
    E(not any(c.get("ports") for c in app), "the app container must not declare ports: its metrics are loopback-only")

    # Service -> pod -> ServiceMonitor.
    svc = one(docs, "Service")
    E(matches(svc["spec"]["selector"], pod_labels), "Service selector does not match the pod")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    E(list(svc_ports) == ["https-metrics"], f"Service must expose only https-metrics, has {list(svc_ports)}")
    tp = svc_ports.get("https-metrics", {}).get("targetPort")
    E(tp in ("https-metrics", ports.get("https-metrics")), f"Service targetPort {tp} is not the gateway's port")

    sm = one(docs, "ServiceMonitor")
    E(sm["metadata"].get("labels", {}).get("release") == "prometheus", "ServiceMonitor needs label release=prometheus")
    E(matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})), "ServiceMonitor selector does not match the Service")
    # The format a team gets is stated, not left to each Prometheus version's default.
    E(bool(sm["spec"].get("scrapeProtocols")), "ServiceMonitor: scrapeProtocols must be stated")
    E(sm["spec"].get("fallbackScrapeProtocol") in (sm["spec"].get("scrapeProtocols") or []),
      "ServiceMonitor: fallbackScrapeProtocol must be one of its scrapeProtocols")
    for rule in find(docs, "PrometheusRule"):
        E(rule["metadata"].get("labels", {}).get("release") == "prometheus", f"{ref(rule)} needs label release=prometheus")
    paths = set()
    for ep in sm["spec"]["endpoints"]:
        paths.add(ep.get("path"))
        where = f"ServiceMonitor endpoint {ep.get('path')}"
        E(ep.get("port") in svc_ports, f"{where}: port {ep.get('port')} not in the Service")
        E(ep.get("scheme") == "https", f"{where}: scheme must be https")
        E(duration_seconds(ep["scrapeTimeout"]) < duration_seconds(ep["interval"]), f"{where}: scrapeTimeout must be below interval")
        t = ep.get("tlsConfig") or {}
        for part, sel in (("ca", (t.get("ca") or {}).get("secret")), ("cert", (t.get("cert") or {}).get("secret")), ("keySecret", t.get("keySecret"))):
            E(bool(sel) and secret_exists(sel["name"], [sel["key"]]), f"{where}: tlsConfig.{part} {sel} does not resolve")
        b = ep.get("basicAuth") or {}
        user_sel, pass_sel = b.get("username"), b.get("password")
        E(bool(user_sel) and bool(pass_sel), f"{where}: basicAuth username and password needed")
        if user_sel and pass_sel and user_sel["name"] in secrets and pass_sel["name"] in secrets:
            import bcrypt

            user = secret_data(secrets[user_sel["name"]]).get(user_sel["key"])
            password = secret_data(secrets[pass_sel["name"]]).get(pass_sel["key"])
            hashed = (web_config.get("basic_auth_users") or {}).get(user)
            E(hashed is not None, f"{where}: user {user!r} is not in basic_auth_users")
            if hashed:
                E(bcrypt.checkpw(password.encode(), hashed.encode()),
                  f"{where}: the password in Secret {pass_sel['name']} does not match the bcrypt hash of {user!r}")
        else:
            E(False, f"{where}: basicAuth Secret(s) not rendered")
        server_name = t.get("serverName")
        E(bool(server_name), f"{where}: tlsConfig.serverName needed (Prometheus dials pod IPs)")
        server_cert = [c for c in find(docs, "Certificate") if c["spec"]["secretName"] in tls_secret_names]
        if server_cert:
            E(server_name in server_cert[0]["spec"].get("dnsNames", []),
              f"{where}: serverName {server_name} not in {ref(server_cert[0])} dnsNames")
        if args.server_cert:
            names, _ = cert_sans(args.server_cert)
            E(server_name in names, f"{where}: serverName {server_name} not in {args.server_cert} SANs {names}")
        client_sel = (t.get("cert") or {}).get("secret") or {}
        client_cert = [c for c in find(docs, "Certificate") if c["spec"]["secretName"] == client_sel.get("name")]
        if client_cert:
            uris = client_cert[0]["spec"].get("uris", [])
            E(bool(uris) and set(uris) <= set(allowed_sans),
              f"{ref(client_cert[0])} uris {uris} not all in client_allowed_sans {allowed_sans}")
            E("client auth" in client_cert[0]["spec"].get("usages", []), f"{ref(client_cert[0])} needs usage `client auth`")
        if args.client_cert:
            _, uris = cert_sans(args.client_cert)
            E(bool(uris) and set(uris) <= set(allowed_sans),
              f"{args.client_cert} URI SANs {uris} not all in client_allowed_sans {allowed_sans}")
    E((config.get("server") or {}).get("metrics_path", "/metrics") in paths,
      "server.metrics_path is not scraped by any ServiceMonitor endpoint")
    E("/gateway/metrics" in paths, "no ServiceMonitor endpoint scrapes /gateway/metrics")
    # The alerts select the gateway's own series by job="scrapeguard": the endpoint
    # for /gateway/metrics must set that job label.
    own = [ep for ep in sm["spec"]["endpoints"] if ep.get("path") == "/gateway/metrics"]
    gateway_jobs = {r.get("replacement") for ep in own for r in ep.get("relabelings", []) if r.get("targetLabel") == "job"}
    rule_jobs = {m for rule in find(docs, "PrometheusRule") for g in rule["spec"]["groups"] for r in g["rules"]
                 for m in re.findall(r'job="([^"]+)"', r["expr"])}
    E(rule_jobs <= gateway_jobs, f"rules select job(s) {sorted(rule_jobs)}, the /gateway/metrics endpoint sets {sorted(gateway_jobs)}")
    # Every range in a rule spans at least four scrape intervals (of the slowest
    # endpoint), so one missed scrape does not empty a rate().
    slowest = max(duration_seconds(ep["interval"]) for ep in sm["spec"]["endpoints"])
    for rule in find(docs, "PrometheusRule"):
        for g in rule["spec"]["groups"]:
            for r in g["rules"]:
                for window in re.findall(r"\[(\d+[smhd])(?::[^\]]*)?\]", r["expr"]):
                    seconds = duration_seconds(window) if not window.endswith("d") else int(window[:-1]) * 86400
                    E(seconds >= 4 * slowest,
                      f"{r.get('record') or r.get('alert')}: range [{window}] is shorter than 4 scrape intervals ({4 * slowest:g}s)")
                # level:metric:operations - the window a name promises (rate5m,
                # mean5m, avg_over_time5m) is the window the expression uses.
                if "record" in r:
                    named = set(re.findall(r"(?:rate|mean|over_time)(\d+[smh])", r["record"].split(":")[-1]))
                    # ...directly, or through a recorded series it reads.
                    used = set(re.findall(r"\[(\d+[smh])\]", r["expr"]))
                    used |= set(re.findall(r"\w+:\w+:\w*?(?:rate|mean|over_time)(\d+[smh])\b", r["expr"]))
                    E(len(r["record"].split(":")) == 3, f"{r['record']}: not of the form level:metric:operations")
                    E(named <= used, f"{r['record']}: the name says {sorted(named)}, the expression uses {sorted(used) or 'no range'}")

    # Certificates: the FQDNs carry the real namespace; both leaves from one CA.
    for c in find(docs, "Certificate"):
        for dns in c["spec"].get("dnsNames", []):
            if ".svc" in dns:
                E(dns.split(".")[1] == ns, f"{ref(c)} dnsName {dns} is not in namespace {ns}")
    leaves = [c for c in find(docs, "Certificate") if not c["spec"].get("isCA")]
    E(len({c["spec"]["issuerRef"]["name"] for c in leaves}) <= 1, "server and client certificates must share an issuer")

    # NetworkPolicy: only the gateway port, only from Prometheus in monitoring.
    policies = find(docs, "NetworkPolicy")
    ingress_policies = [p for p in policies if "Ingress" in p["spec"].get("policyTypes", [])]
    E(bool(ingress_policies), "no NetworkPolicy restricts ingress")
    for p in policies:
        E(matches(p["spec"]["podSelector"].get("matchLabels", {}), pod_labels), f"{ref(p)} does not select the pod")
    for p in ingress_policies:
        for rule in p["spec"].get("ingress", []):
            rule_ports = {pp.get("port") for pp in rule.get("ports", [])}
            E(rule_ports and rule_ports <= {ports.get("https-metrics"), "https-metrics"},
              f"{ref(p)}: ingress rule opens {rule_ports or 'every port'}, only the gateway port is allowed")
            for peer in rule.get("from", []):
                E("namespaceSelector" in peer and "podSelector" in peer and "ipBlock" not in peer,
                  f"{ref(p)}: every peer must name both the namespace and the pods")
                E(peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "monitoring",
                  f"{ref(p)}: peer namespace must be monitoring")

    # The dev-certs overlay's web-config must differ from the base's only in SANs.
    if args.base_web_config:
        base_wc = yaml.safe_load(Path(args.base_web_config).read_text(encoding="utf-8"))
        a, b = copy.deepcopy(base_wc), copy.deepcopy(web_config)
        a["tls_server_config"].pop("client_allowed_sans", None)
        b["tls_server_config"].pop("client_allowed_sans", None)
        E(a == b, f"web-config differs from {args.base_web_config} beyond client_allowed_sans")

    if w.failures:
        raise CheckFailed(f"{len(w.failures)} wiring problem(s):\n  " + "\n  ".join(w.failures))
    print(f"{w.passed} wiring assertions hold")


# --------------------------------------------------------------------- skips
def cmd_skips(args) -> None:
    data = yaml.safe_load(Path(args.skipfile).read_text(encoding="utf-8")) or {}
    ids = []
    for s in data.get("skips") or []:
        if not re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", str(s.get("id", ""))):
            raise CheckFailed(f"{args.skipfile}: bad check id {s.get('id')!r}")
        if len(str(s.get("reason", "")).strip()) < 20:
            raise CheckFailed(f"{args.skipfile}: {s['id']} needs a reason")
        if s.get("framework") == args.framework:
            ids.append(s["id"])
    print(",".join(ids))


def cmd_serve_args(args) -> None:
    _, c = sidecar(load(args.rendered))
    print("\n".join(c.get("args", [])))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split"); s.add_argument("rendered"); s.add_argument("outdir"); s.set_defaults(func=cmd_split)
    s = sub.add_parser("crd"); s.add_argument("rendered"); s.add_argument("crd_dir"); s.set_defaults(func=cmd_crd)
    s = sub.add_parser("certmanager"); s.add_argument("rendered"); s.add_argument("--expect-none", action="store_true")
    s.set_defaults(func=cmd_certmanager)
    s = sub.add_parser("rules"); s.add_argument("rendered"); s.add_argument("out"); s.set_defaults(func=cmd_rules)
    s = sub.add_parser("mutants"); s.add_argument("rules"); s.add_argument("testfile")
    s.add_argument("--promtool", default="promtool"); s.set_defaults(func=cmd_mutants)
    s = sub.add_parser("configs"); s.add_argument("rendered"); s.add_argument("outdir"); s.add_argument("tlsdir")
    s.set_defaults(func=cmd_configs)
    s = sub.add_parser("wiring"); s.add_argument("rendered"); s.add_argument("--server-cert"); s.add_argument("--client-cert")
    s.add_argument("--base-web-config"); s.set_defaults(func=cmd_wiring)
    s = sub.add_parser("skips"); s.add_argument("skipfile"); s.add_argument("framework"); s.set_defaults(func=cmd_skips)
    s = sub.add_parser("serve-args"); s.add_argument("rendered"); s.set_defaults(func=cmd_serve_args)
    args = p.parse_args()
    try:
        args.func(args)
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
