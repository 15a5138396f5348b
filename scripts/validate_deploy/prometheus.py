"""deploy/prometheus: prometheus.yml's structure; the rule groups' structure, PromQL, metric names
and labels (alerts.yml and the PrometheusRule share check_rule_groups)."""
import re

import promql_parser
import yaml

from .common import read
from .promql import check_promql
from .report import err

def check_rule_groups(w, groups, verbose=True):
    """Prometheus rule groups (alerts.yml, the PrometheusRule's spec.groups): structure, PromQL,
    metric names and labels. Returns the rule names."""
    names = []
    for g in groups:
        for k in set(g) - {"name", "interval", "rules", "limit", "labels", "query_offset"}:
            err(w, f"group {g.get('name')}: unknown key {k}")
        for r in g["rules"]:
            where = f"{w}: {r.get('alert') or r.get('record')}"
            if ("alert" in r) == ("record" in r):
                err(where, "a rule has exactly one of alert and record")
            for k in set(r) - {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}:
                err(where, f"unknown key {k}")
            if "for" in r:
                try:
                    promql_parser.parse_duration(r["for"])
                except ValueError:
                    err(where, f"for: {r['for']!r} is not a duration")
            for k, v in {**r.get("labels", {}), **r.get("annotations", {})}.items():
                if not isinstance(v, str):
                    err(where, f"{k} must be a string")
                elif v.count("{{") != v.count("}}"):
                    err(where, f"{k}: unbalanced template braces")
            if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                err(where, "labels.severity must be critical, warning or info")
            used = check_promql(where, r["expr"])
            names.append(r.get("alert") or r.get("record"))
            if verbose:
                print(f"  {names[-1]}: {sorted(used)}")
    if len(names) != len(set(names)):
        err(w, "duplicate rule names")
    return names


def section_prometheus():
    w = "deploy/prometheus/prometheus.yml"
    conf = yaml.safe_load(read(w))
    allowed_top = {"global", "rule_files", "scrape_configs", "alerting", "remote_write",
                   "remote_read", "storage", "tracing", "scrape_config_files", "runtime", "otlp"}
    for k in set(conf) - allowed_top:
        err(w, f"unknown top-level key {k}")
    for k, v in conf.get("global", {}).items():
        if k.endswith(("_interval", "_timeout")):
            try:
                promql_parser.parse_duration(v)
            except ValueError:
                err(w, f"global.{k}: {v!r} is not a duration")
    jobs = [sc["job_name"] for sc in conf["scrape_configs"]]
    if "realstat" not in jobs:
        err(w, "no job named realstat (alerts.yml selects job=\"realstat\")")
    if len(jobs) != len(set(jobs)):
        err(w, f"duplicate job names {jobs}")
    for sc in conf["scrape_configs"]:
        for k in set(sc) - {"job_name", "static_configs", "metrics_path", "scheme", "scrape_interval",
                            "scrape_timeout", "relabel_configs", "metric_relabel_configs", "honor_labels"}:
            err(w, f"{sc['job_name']}: unexpected key {k}")
        for g in sc.get("static_configs", []):
            for t in g["targets"]:
                if not re.fullmatch(r"[\w.-]+:\d+", t):
                    err(w, f"{sc['job_name']}: target {t!r} is not host:port")
    w = "deploy/prometheus/alerts.yml"
    names = check_rule_groups(w, yaml.safe_load(read(w))["groups"])
    want = {"RealstatReplicaNotReady": "realstat_ready", "RealstatPartitionLagHigh": "realstat_partition_lag",
            "RealstatEventRejectionRateHigh": "realstat_events_rejected_total",
            "RealstatAuthFailureSpike": "realstat_auth_failures_total",
            "RealstatSnapshotStale": "realstat_snapshot_age_seconds",
            "RealstatRequestLatencyHigh": "realstat_request_duration_seconds_bucket"}
    for alert, metric in want.items():
        if alert not in names:
            err(w, f"missing alert {alert} (on {metric})")
    return names


