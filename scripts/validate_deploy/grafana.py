"""deploy/grafana: the dashboard's JSON, layout, variables and queries (PromQL, metric names and
labels), and the provisioning files."""
import json
import re

import yaml

from .common import read
from .facts import series_facts
from .promql import check_promql
from .report import err

def section_grafana():
    w = "deploy/grafana/realstat-dashboard.json"
    try:
        d = json.loads(read(w))
    except json.JSONDecodeError as e:
        err(w, f"not JSON: {e}")
        return
    for k in ("uid", "title", "panels", "schemaVersion", "templating"):
        if k not in d:
            err(w, f"missing {k}")
    if not 36 <= d.get("schemaVersion", 0) <= 41:
        err(w, f"schemaVersion {d.get('schemaVersion')} outside 36..41")
    variables = {v["name"]: v for v in d["templating"]["list"]}
    if variables.get("datasource", {}).get("type") != "datasource":
        err(w, "needs a datasource variable named datasource")
    for v in variables.values():
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", q or "")
        if v["type"] == "query":
            if not m:
                err(w, f"variable {v['name']}: unsupported query {q!r}")
            elif not series_facts(m.group(1))[0] or m.group(2) not in series_facts(m.group(1))[1]:
                err(w, f"variable {v['name']}: {q!r} names an unknown metric or label")
    ids, cells, count, used = set(), {}, 0, set()
    for p in d["panels"]:
        pw = f"{w}: panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            err(pw, "duplicate id")
        ids.add(p.get("id"))
        gp = p.get("gridPos", {})
        if not (gp.get("x", 0) + gp.get("w", 0) <= 24 and gp.get("w", 0) > 0 and gp.get("h", 0) > 0):
            err(pw, f"gridPos {gp} outside the 24-column grid")
        for x in range(gp.get("x", 0), gp.get("x", 0) + gp.get("w", 0)):
            for y in range(gp.get("y", 0), gp.get("y", 0) + gp.get("h", 0)):
                if (x, y) in cells:
                    err(pw, f"overlaps panel {cells[(x, y)]}")
                    break
                cells[(x, y)] = p.get("id")
        if p["type"] == "row":
            continue
        count += 1
        for t in p.get("targets", []):
            ds = (t.get("datasource") or p.get("datasource") or {}).get("uid")
            if ds != "${datasource}":
                err(pw, f"datasource {ds!r} is not the ${{datasource}} variable")
            used |= check_promql(pw, t["expr"], grafana=True)
        if not p.get("targets"):
            err(pw, "no queries")
    wanted = {"realstat_events_consumed_total", "realstat_events_applied_total", "realstat_events_rejected_total",
              "realstat_partition_lag", "realstat_event_visible_delay_seconds_bucket", "realstat_requests_total",
              "realstat_request_duration_seconds_bucket", "realstat_auth_failures_total", "realstat_tasks_tracked",
              "realstat_calls_tracked", "realstat_ready", "realstat_snapshot_age_seconds", "realstat_snapshot_size_bytes"}
    for m in sorted(wanted - used):
        err(w, f"no panel shows {m}")
    ds = yaml.safe_load(read("deploy/grafana/provisioning/datasources/prometheus.yml"))
    if ds.get("apiVersion") != 1 or ds["datasources"][0]["type"] != "prometheus":
        err("deploy/grafana/provisioning/datasources/prometheus.yml", "want apiVersion 1 and a prometheus datasource")
    prov = yaml.safe_load(read("deploy/grafana/provisioning/dashboards/realstat.yml"))
    if prov.get("apiVersion") != 1 or prov["providers"][0].get("type") != "file":
        err("deploy/grafana/provisioning/dashboards/realstat.yml", "want apiVersion 1 and a file provider")
    print(f"{count} panels, {len(used)} series queried: {sorted(used)}")


