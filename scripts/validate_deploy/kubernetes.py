"""deploy/kubernetes: the layout (base, components, overlays), the kustomize builds, the wiring of
config, keys, snapshots, probes, services, PDB and NetworkPolicy, the Prometheus Operator objects
against their CRD models, and the names they use against the binary."""
import re
from pathlib import Path

import yaml

from . import facts as F
from .common import ROOT, read, rel
from .prometheus import check_rule_groups
from .report import err
from .settings import (check_command, check_config_toml, check_env, check_keys_toml, check_route, command_of,
                       effective)

K8S = "deploy/kubernetes"
# The optional components and the Prometheus Operator kinds they hold.
COMPONENT_KINDS = {"placeholder-secret": {"Secret"},
                   "prometheus-operator": {"ServiceMonitor", "PrometheusRule"}}
NOT_IN_BASE = {"Secret": "applying the base would overwrite the user's Secret",
               "ServiceMonitor": "needs the Prometheus Operator's CRDs",
               "PrometheusRule": "needs the Prometheus Operator's CRDs"}


def kustomize_load(d):
    """The kustomization of directory d and the (file, object) pairs it adds, following resources
    and components as kustomize does (its transformers aside)."""
    d = Path(d).resolve()
    kfile = d / "kustomization.yaml"
    if not kfile.exists():
        err(rel(d), "no kustomization.yaml")
        return {}, []
    kust = yaml.safe_load(kfile.read_text())
    objs = []
    for entry in (kust.get("resources") or []) + (kust.get("components") or []):
        target = (d / entry).resolve()
        if target.is_dir():
            objs += kustomize_load(target)[1]
        elif target.is_file():
            objs += [(rel(target), o) for o in yaml.safe_load_all(target.read_text()) if o]
        else:
            err(rel(kfile), f"{entry} does not exist")
    return kust, objs


def by_kind(objs):
    out = {}
    for w, o in objs:
        out.setdefault(o["kind"], []).append((w, o))
    return out


def check_crd(where, obj):
    """A Prometheus Operator object, strictly against the CRD models (v0.80.1): the models
    ignore unknown fields, so whatever they drop is reported as unknown."""
    import pydantic
    from cloudcoil.models.prometheus_operator import v1
    model_cls = getattr(v1, obj.get("kind", ""), None)
    if obj.get("apiVersion") != "monitoring.coreos.com/v1" or model_cls is None:
        err(where, f"{obj.get('apiVersion')} {obj.get('kind')}: not a Prometheus Operator v1 kind")
        return
    try:
        model = model_cls.model_validate(obj)
    except pydantic.ValidationError as e:
        err(where, f"does not match the {obj['kind']} CRD: {e}")
        return

    def dropped(inp, out, path="$"):
        if isinstance(inp, dict):
            for k, v in inp.items():
                if not isinstance(out, dict) or k not in out:
                    err(where, f"{path}.{k}: unknown field ({obj['kind']} CRD)")
                else:
                    dropped(v, out[k], f"{path}.{k}")
        elif isinstance(inp, list) and isinstance(out, list):
            for i, (a, b) in enumerate(zip(inp, out)):
                dropped(a, b, f"{path}[{i}]")
    dropped(obj, model.model_dump(by_alias=True, exclude_unset=True, mode="json"))


def check_kustomize_layout():
    """base/, components/*, overlays/*, and the quick start deploy/kubernetes = the base."""
    top = ROOT / K8S

    def files_of(d):
        return sorted(p.name for p in d.glob("*.yaml") if p.name != "kustomization.yaml")

    for p in sorted(top.glob("*.yaml")):
        if p.name != "kustomization.yaml":
            err(rel(p), "belongs in base/ or a component: deploy/kubernetes/kustomization.yaml is the base alone")
    kust, _ = kustomize_load(top)
    if kust.get("resources") != ["base"] or set(kust) - {"apiVersion", "kind", "resources"}:
        err(f"{K8S}/kustomization.yaml", "the quick start must be exactly the base (resources: [base])")
    bk, base_objs = kustomize_load(top / "base")
    if bk.get("kind") != "Kustomization" or bk.get("components"):
        err(f"{K8S}/base/kustomization.yaml", "must be a Kustomization without components")
    if sorted(bk.get("resources") or []) != files_of(top / "base"):
        err(f"{K8S}/base/kustomization.yaml", f"resources {bk.get('resources')} != files {files_of(top / 'base')}")
    base_kinds = {o["kind"] for _, o in base_objs}
    for kind, why in NOT_IN_BASE.items():
        if kind in base_kinds:
            err(f"{K8S}/base", f"contains a {kind}: {why}; it belongs in a component")
    for kind in ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"):
        if kind not in base_kinds:
            err(f"{K8S}/base", f"has no {kind}")
    components = {}
    for c in sorted(p for p in (top / "components").iterdir() if p.is_dir()):
        ck, objs = kustomize_load(c)
        w = f"{rel(c)}/kustomization.yaml"
        if ck.get("kind") != "Component" or ck.get("apiVersion") != "kustomize.config.k8s.io/v1alpha1":
            err(w, "must be kind: Component, apiVersion: kustomize.config.k8s.io/v1alpha1")
        if sorted(ck.get("resources") or []) != files_of(c):
            err(w, f"resources {ck.get('resources')} != files {files_of(c)}")
        kinds = {o["kind"] for _, o in objs}
        if kinds != COMPONENT_KINDS.get(c.name):
            err(w, f"holds {sorted(kinds)}; scripts/validate-deploy expects {COMPONENT_KINDS.get(c.name)}")
        components[c.name] = objs
    for name in set(COMPONENT_KINDS) - set(components):
        err(f"{K8S}/components", f"component {name} is missing")
    overlays = {}
    for o in sorted(p for p in (top / "overlays").iterdir() if p.is_dir()):
        ok, objs = kustomize_load(o)
        w = f"{rel(o)}/kustomization.yaml"
        if [(o / r).resolve() for r in ok.get("resources") or []] != [(top / "base").resolve()]:
            err(w, "resources must be the base alone (../../base)")
        used = sorted((o / c).resolve().name for c in ok.get("components") or [])
        if used != sorted(components):
            err(w, f"uses components {used}; an example shows all of {sorted(components)}")
        if not ok.get("namespace"):
            err(w, "sets no namespace")
        img = {i["name"]: i for i in ok.get("images") or []}.get("realstat", {})
        if not img.get("newName") or not img.get("newTag"):
            err(w, "sets no image (images: name realstat, newName, newTag)")
        overlays[o.name] = (ok, objs)
    if "example" not in overlays:
        err(f"{K8S}/overlays", "no example overlay")
    return base_objs, components, overlays


def check_builds(build, base_objs, components, overlays):
    """The real kustomize output (tools.kustomize builds it into the directory build): same
    objects as read above, labels and the overlay's namespace and image applied, and the
    Prometheus Operator objects of every build against the CRD models."""
    b = Path(build)

    def load(name):
        return [o for o in yaml.safe_load_all((b / f"{name}.yaml").read_text()) if o]

    def ids(objs):
        return sorted((o["kind"], o["metadata"]["name"]) for o in objs)

    builds = {"base": (load("base"), [o for _, o in base_objs])}
    if (b / "quickstart.yaml").read_text() != (b / "base.yaml").read_text():
        err(f"{K8S}/kustomization.yaml", "kubectl kustomize deploy/kubernetes differs from the base")
    for c, objs in components.items():
        builds[f"component-{c}"] = (load(f"component-{c}"), [o for _, o in base_objs + objs])
    for o, (_, objs) in overlays.items():
        builds[f"overlay-{o}"] = (load(f"overlay-{o}"), [x for _, x in objs])
    for name, (built, read_) in builds.items():
        w = f"kubectl kustomize ({name})"
        if ids(built) != ids(read_):
            err(w, f"objects {ids(built)} differ from the files {ids(read_)}")
        for o in built:
            if o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") != "realstat":
                err(w, f"{o['kind']} {o['metadata']['name']}: no label app.kubernetes.io/part-of=realstat")
            if o["apiVersion"].startswith("monitoring.coreos.com/"):
                check_crd(f"{w}: {o['kind']} {o['metadata']['name']}", o)
    for o, (ok, _) in overlays.items():
        built, _ = builds[f"overlay-{o}"]
        w = f"kubectl kustomize ({K8S}/overlays/{o})"
        for x in built:
            if x["metadata"].get("namespace") != ok.get("namespace"):
                err(w, f"{x['kind']} {x['metadata']['name']} is not in namespace {ok.get('namespace')}")
        img = {i["name"]: i for i in ok.get("images") or []}.get("realstat", {})
        want = f"{img.get('newName')}:{img.get('newTag')}"
        for x in built:
            if x["kind"] == "Deployment":
                got = [c["image"] for c in x["spec"]["template"]["spec"]["containers"]]
                if got != [want]:
                    err(w, f"image {got}, want [{want!r}]")
    print(f"kustomize builds {sorted(builds)}: the same objects as the files; Prometheus Operator objects "
          "checked against the CRD models")


def check_deployment(docs):
    """The Deployment: selector, ports, probes on admin routes, security, resources, command line
    and environment. Returns (where, pod labels, container ports, container, pod spec)."""
    w, dep = docs["Deployment"][0]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    if dep["spec"]["selector"]["matchLabels"].items() - labels.items():
        err(w, "selector does not match the pod labels")
    spec = pod["spec"]
    c = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    if ports != {"http": 8080, "admin": 9090, "callback": 8443}:
        err(w, f"container ports {ports} != http 8080, admin 9090, callback 8443")
    for probe, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live"),
                        ("startupProbe", "/health/live")):
        g = c.get(probe, {}).get("httpGet", {})
        if g.get("path") != path or g.get("port") not in ("admin", 9090):
            err(w, f"{probe} must GET {path} on the admin port")
        check_route(w, f"{probe} requests", g.get("path"))
    if spec.get("terminationGracePeriodSeconds", 30) < 30:
        err(w, "terminationGracePeriodSeconds < 30")
    sc = c.get("securityContext", {})
    for key, want in (("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False),
                      ("runAsNonRoot", True)):
        if sc.get(key) is not want:
            err(w, f"container securityContext.{key} must be {want}")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        err(w, "capabilities must drop ALL")
    uid = re.search(r"^USER (\d+)", read("Dockerfile"), re.M).group(1)
    if str(sc.get("runAsUser", spec.get("securityContext", {}).get("runAsUser"))) != uid:
        err(w, f"runAsUser is not the image's uid {uid}")
    if not c.get("resources", {}).get("limits") or not c.get("resources", {}).get("requests"):
        err(w, "resources requests and limits required")
    argv = c.get("args", ["serve"])
    check_env(w, [e["name"] for e in c.get("env", [])], command_of(argv))
    check_command(w, argv)
    ann = pod["metadata"].get("annotations", {})
    if ann.get("prometheus.io/port") != "9090":
        err(w, "prometheus.io/port annotation must be the admin port 9090")
    return w, labels, ports, c, spec


def check_pod_files(w, docs, c, spec, ports):
    """The config file (ConfigMap) and keys file (Secret) the pod mounts, against the schema; the
    snapshot directory on a volume; the listeners on the container's ports."""
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in spec["volumes"]}
    cfg_path = env.get("REALSTAT_CONFIG", "")
    cm_vol = vols[mounts[cfg_path.rsplit("/", 1)[0]]]
    cmw, cm = {d["metadata"]["name"]: (cw, d) for cw, d in docs["ConfigMap"]}[cm_vol["configMap"]["name"]]
    conf = check_config_toml(cmw, cm["data"][cfg_path.rsplit("/", 1)[1]])
    keys_path = conf.get("auth", {}).get("keys_file", "")
    sec_vol = vols.get(mounts.get(keys_path.rsplit("/", 1)[0], ""), {})
    if sec_vol.get("secret", {}).get("secretName") != "realstat-keys":
        err(w, f"keys_file {keys_path} is not on a volume of Secret realstat-keys")
    # The Secret comes from the user (or the placeholder component): check the placeholder's keys.
    for sw, secret in docs.get("Secret", []):
        if secret["metadata"]["name"] != "realstat-keys":
            err(sw, "the placeholder must be Secret realstat-keys, the one deployment.yaml mounts")
        else:
            check_keys_toml(sw, secret["stringData"][keys_path.rsplit("/", 1)[1]])
    snap = conf.get("snapshot", {}).get("dir")
    if snap not in mounts:
        err(w, f"snapshot dir {snap} is not a volume (the root filesystem is read-only)")
    # The ports the service listens on, as configured (or by default), are the container's.
    for key, port in (("listen", "http"), ("admin_listen", "admin")):
        if key in F.FACTS.settings:
            addr = str(effective(key, conf, env) or "")
            if addr.rpartition(":")[2] != str(ports.get(port)):
                err(w, f"{key} is {addr!r} in the pod; its container port {port} is {ports.get(port)}")


def check_services(docs, labels, ports):
    """Services select the pods and name their ports; the API Service only the API port; the PDB.
    Returns the Services by name."""
    services = {d["metadata"]["name"]: (sw, d) for sw, d in docs["Service"]}
    for name, (sw, svc) in services.items():
        sel = svc["spec"]["selector"]
        if sel.items() - labels.items():
            err(sw, f"{name}: selector matches no pod")
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in ports:
                err(sw, f"{name}: targetPort {p['targetPort']} unknown")
    sw, api = services["realstat"]
    if [p["targetPort"] for p in api["spec"]["ports"]] != ["http"]:
        err(sw, "Service realstat must expose only the API port")
    pw, pdb = docs["PodDisruptionBudget"][0]
    if pdb["spec"]["selector"]["matchLabels"].items() - labels.items():
        err(pw, "selector matches no pod")
    if pdb["spec"].get("minAvailable") != 1:
        err(pw, "minAvailable must be 1")
    return services


def check_prometheus_operator(docs, services):
    """ServiceMonitor and PrometheusRule: strictly against the CRD models, then what they refer to
    (the admin Service, its port, an admin route; the groups of alerts.yml). Returns the rule names."""
    sw, sm = docs["ServiceMonitor"][0]
    check_crd(sw, sm)
    sel = sm["spec"]["selector"]["matchLabels"]
    hits = [n for n, (_, s) in services.items() if not sel.items() - s["metadata"]["labels"].items()]
    if hits != ["realstat-admin"]:
        err(sw, f"selects services {hits}, want exactly realstat-admin")
    admin_svc = services["realstat-admin"][1]
    job_label = sm["spec"].get("jobLabel")
    job = admin_svc["metadata"]["labels"].get(job_label) if job_label else "realstat-admin"
    if job != "realstat":
        err(sw, f"job label would be {job!r}; alerts.yml and the compose Prometheus use job=\"realstat\"")
    admin_ports = {p["name"] for p in admin_svc["spec"]["ports"]}
    for ep in sm["spec"]["endpoints"]:
        if ep["port"] not in admin_ports:
            err(sw, f"endpoint port {ep['port']} is not a port of realstat-admin")
        check_route(sw, "endpoint scrapes", ep.get("path", "/metrics"))
    rw, rule = docs["PrometheusRule"][0]
    check_crd(rw, rule)
    alerts = yaml.safe_load(read("deploy/prometheus/alerts.yml"))
    if rule.get("spec", {}).get("groups") != alerts["groups"]:
        err(rw, "spec.groups differ from the groups of deploy/prometheus/alerts.yml: regenerate it "
                "(the command is at the top of the file)")
    return check_rule_groups(rw, rule.get("spec", {}).get("groups") or [], verbose=False)


def section_kubernetes(build=None):
    base_objs, components, overlays = check_kustomize_layout()
    # Every object of the example overlay (base plus all components), for the wiring checks.
    objs = overlays["example"][1] if "example" in overlays else base_objs
    docs = by_kind(objs)
    w, labels, ports, container, spec = check_deployment(docs)
    check_pod_files(w, docs, container, spec, ports)
    services = check_services(docs, labels, ports)
    check_networkpolicy(docs.get("NetworkPolicy", []), labels, ports)
    names = check_prometheus_operator(docs, services)
    if build:
        check_builds(build, base_objs, components, overlays)
    print(f"objects of overlays/example: {sorted((k, len(v)) for k, v in docs.items())}; "
          f"ServiceMonitor and PrometheusRule ({len(names)} rules, the groups of alerts.yml) checked "
          "against the Prometheus Operator v0.80.1 CRD models")


def check_networkpolicy(policies, labels, ports):
    """The API port open to anyone, the admin port only from selected peers, nothing else."""
    if len(policies) != 1:
        err(f"{K8S}/base", f"want one NetworkPolicy, found {len(policies)}")
        return
    w, np = policies[0]
    spec = np.get("spec", {})
    sel = spec.get("podSelector", {}).get("matchLabels") or {}
    if not sel or sel.items() - labels.items():
        err(w, f"podSelector {sel} does not select the realstat pods {labels}")
    if "Ingress" not in spec.get("policyTypes", []):
        err(w, "policyTypes must include Ingress")
    open_to_all, admin_peers, callback_peers = set(), [], []
    for i, rule in enumerate(spec.get("ingress") or []):
        if not rule.get("ports"):
            err(w, f"ingress[{i}] has no ports: it would open every port")
            continue
        for p in rule["ports"]:
            port = p.get("port")
            name = port if isinstance(port, str) else {v: k for k, v in ports.items()}.get(port)
            if name not in ports:
                err(w, f"ingress[{i}]: port {port!r} is not a container port {ports}")
                continue
            if p.get("protocol", "TCP") != "TCP":
                err(w, f"ingress[{i}]: port {port} is TCP")
            if not rule.get("from"):
                open_to_all.add(name)
            elif name == "admin":
                admin_peers += rule["from"]
            elif name == "callback":
                callback_peers += rule["from"]
    if open_to_all != {"http"}:
        err(w, f"ports open to any source {sorted(open_to_all)}; want exactly http (the API)")
    if not admin_peers:
        err(w, "no rule admits the admin port (Prometheus, the probes of operators)")
    if {} not in [p.get("podSelector") for p in admin_peers if set(p) == {"podSelector"}]:
        err(w, "the admin port must be open to the pods of the namespace (podSelector: {})")
    ns = [p["namespaceSelector"].get("matchLabels", {}).get("kubernetes.io/metadata.name")
          for p in admin_peers if "namespaceSelector" in p]
    if not any(ns):
        err(w, "the admin port must be open to the Prometheus namespace "
               "(namespaceSelector on kubernetes.io/metadata.name)")
    for what, peers in (("admin", admin_peers), ("callback", callback_peers)):
        for p in peers:
            if "ipBlock" in p and p["ipBlock"].get("cidr") in ("0.0.0.0/0", "::/0"):
                err(w, f"the {what} port is open to every address")
    # The iSales callback: open to the iSales network only (docs/callback.md).
    if not callback_peers:
        err(w, "no rule admits the callback port from the iSales network")


