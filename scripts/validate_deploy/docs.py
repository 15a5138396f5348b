"""docs/operations.md against the binary's metric table, the alerts and the paths it names; no
deployment file refers to a checkout beside the repository."""
import re

from . import facts as F
from .common import ROOT, read
from .facts import series_facts
from .report import err
from .settings import check_env

METRIC_NAME = r"(?:realstat|process)_[a-z0-9_]+"


def metric_rows(text):
    """The metrics table's rows: name -> (types, labels cell) for every metric named in a row's
    first cell (`| `name` | type | labels | meaning |`; one row may name several metrics)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) < 3:
            continue
        for name in re.findall(rf"`({METRIC_NAME})`", cells[0]):
            rows[name] = (set(re.findall(r"[a-z]+", cells[1])), cells[2])
    return rows


def section_docs(alerts):
    w = "docs/operations.md"
    if not (ROOT / w).exists():
        err(w, "missing")
        return
    text = read(w)
    metrics = F.FACTS.metrics
    rows = metric_rows(text)
    for m, (kind, labels) in sorted(metrics.items()):
        if m not in rows:
            err(w, f"metric {m} is not in the metrics table")
            continue
        types, cell = rows[m]
        if kind not in types:
            err(w, f"metric {m}: the table says {' / '.join(sorted(types))}, the binary {kind}")
        documented = set(re.findall(r"`([a-z_]+)`", cell))
        for label in labels:
            if label not in documented:
                err(w, f"metric {m}: label {label} is not in the table")
        if not labels and cell:
            err(w, f"metric {m} has no labels; the table gives {cell!r}")
    # process_* metrics exist only where the binary reads /proc (Linux): named here, they are
    # checked when the binary reports some.
    has_process = any(m.startswith("process_") for m in metrics)
    for m in sorted(set(re.findall(rf"`({METRIC_NAME})`", text))):
        if m.startswith("process_") and not has_process:
            continue
        if m not in metrics and not series_facts(m)[0]:
            err(w, f"names {m}, which the binary does not report (`realstat metrics list`)")
    for a in alerts:
        if a not in text:
            err(w, f"alert {a} is not explained")
    for e in set(re.findall(r"\b(REALSTAT_[A-Z_]+)\b", text)):
        check_env(w, [e])
    paths = set(re.findall(r"`((?:deploy|scripts)/[\w./-]+)`", text))
    for path in sorted(paths):
        if not (ROOT / path).exists():
            err(w, f"names {path}, which does not exist")
    # The deployment stands on its own: nothing refers to a checkout beside this repository.
    sibling = "../" + "shared"
    for f in [ROOT / "docker-compose.yml", ROOT / "Dockerfile", ROOT / ".dockerignore", ROOT / w,
              *sorted(x for x in (ROOT / "deploy").rglob("*") if x.is_file())]:
        if sibling in f.read_text(errors="replace"):
            err(f.relative_to(ROOT).as_posix(), f"refers to {sibling}, outside the repository")
    print(f"{len(metrics)} metrics (types and labels) and {len(alerts)} alerts documented; {len(paths)} "
          f"deploy/ and scripts/ paths exist; no deployment file refers to {sibling}")
