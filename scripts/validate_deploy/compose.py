"""docker-compose.yml and deploy/compose/: the realstat services against the binary's commands,
flags, environment variables, settings, keys-file fields and admin routes; the wiring of the
balancer, Prometheus, Grafana and Kafka."""
import ipaddress
import re
import tomllib

import yaml

from .common import ROOT, read
from .report import err
from .settings import (check_command, check_config_toml, check_env, check_keys_toml, check_route, command_of,
                       effective)


def check_realstat_service(w, svc, volumes):
    """A service running the realstat image: its command line, environment, healthcheck, and the
    config and keys files it mounts. Returns the ports it listens on, {setting: port}, when it
    serves."""
    env = svc.get("environment") or {}
    names = env.keys() if isinstance(env, dict) else [e.split("=")[0] for e in env]
    cmd = svc.get("command") or ["serve"]
    argv = cmd if isinstance(cmd, list) else cmd.split()
    check_env(w, names, command_of(argv))
    check_command(w, argv)
    hc = " ".join(svc.get("healthcheck", {}).get("test", []))
    for path in re.findall(r"GET (\S+) HTTP", hc):
        check_route(w, "healthcheck requests", path)
    if svc.get("command") not in (None, ["serve"]):
        return {}
    conf = {}
    for v in svc.get("volumes") or []:
        host, target = v.split(":")[:2]
        if target == env.get("REALSTAT_KEYS_FILE"):
            check_keys_toml(host, read(host))
        if target == env.get("REALSTAT_CONFIG"):
            conf = check_config_toml(host, read(host))
    if env.get("REALSTAT_SNAPSHOT_DIR") not in [v.split(":")[1] for v in svc.get("volumes", [])]:
        err(w, "REALSTAT_SNAPSHOT_DIR is not on a volume")
    env = env if isinstance(env, dict) else dict(e.split("=", 1) for e in env)
    return {key: str(effective(key, conf, env) or "").rpartition(":")[2] for key in ("listen", "admin_listen")}


def section_compose():
    where = "docker-compose.yml"
    doc = yaml.safe_load(read(where))
    services = doc["services"]
    volumes = set(doc.get("volumes") or {})
    networks = set(doc.get("networks") or {})
    built = {s.get("image") for s in services.values() if s.get("build")}
    listening = {}  # realstat service -> {setting: port}: the environment, its config file, the default
    for name, svc in services.items():
        w = f"{where}: services.{name}"
        for dep in svc.get("depends_on") or {}:
            if dep not in services:
                err(w, f"depends_on unknown service {dep}")
        for v in svc.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if src.startswith("."):
                if not (ROOT / src).exists():
                    err(w, f"bind mount source {src} does not exist")
            elif src not in volumes:
                err(w, f"named volume {src} not declared")
        for n in svc.get("networks") or []:
            if n not in networks:
                err(w, f"network {n} not declared")
        image = svc.get("image", "")
        if image.startswith("realstat") and image not in built:
            err(w, f"image {image} is built by no service")
        if svc.get("build") or image in built:
            listening[name] = check_realstat_service(w, svc, volumes)
    # The balancer's address must be the trusted proxy of the replicas.
    lb_ip = services["lb"]["networks"]["realstat"]["ipv4_address"]
    conf = tomllib.loads(read("deploy/compose/realstat.toml"))
    if lb_ip not in conf.get("auth", {}).get("trusted_proxies", []):
        err(where, f"lb address {lb_ip} is not in auth.trusted_proxies of deploy/compose/realstat.toml")
    subnet = ipaddress.ip_network(doc["networks"]["realstat"]["ipam"]["config"][0]["subnet"])
    if ipaddress.ip_address(lb_ip) not in subnet:
        err(where, f"lb address {lb_ip} outside {subnet}")
    # Prometheus mounts and targets.
    prom = services["prometheus"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prom["volumes"] if v.startswith(".")}
    pconf = yaml.safe_load(read("deploy/prometheus/prometheus.yml"))
    for rf in pconf.get("rule_files", []):
        if rf not in mounts:
            err("deploy/prometheus/prometheus.yml", f"rule file {rf} is not mounted by docker-compose.yml")
    # The replicas: the services that run the image's default command, serve.
    replicas = [n for n, s in services.items()
                if (s.get("build") or s.get("image") in built) and not s.get("profiles")
                and (s.get("command") or ["serve"])[0] == "serve"]
    targets = [t for sc in pconf["scrape_configs"] if sc["job_name"] == "realstat"
               for g in sc["static_configs"] for t in g["targets"]]
    want = sorted(f"{r}:{listening[r].get('admin_listen')}" for r in replicas)
    if sorted(targets) != want:
        err("deploy/prometheus/prometheus.yml", f"realstat targets {targets} are not the admin listeners of "
                                                f"the replicas {want} (admin_listen)")
    metrics_path = [sc.get("metrics_path", "/metrics") for sc in pconf["scrape_configs"] if sc["job_name"] == "realstat"]
    for path in metrics_path:
        check_route("deploy/prometheus/prometheus.yml", "job realstat scrapes", path)
    # nginx upstream: the replicas' API port, Host passed through.
    nginx = read("deploy/compose/nginx.conf")
    ups = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", nginx, re.M)
    want = sorted((r, listening[r].get("listen")) for r in replicas)
    if sorted(ups) != want:
        err("deploy/compose/nginx.conf", f"upstream {ups} is not the API listeners of the replicas {want} (listen)")
    if not re.search(r"proxy_set_header\s+Host\s+\$http_host;", nginx):
        err("deploy/compose/nginx.conf", "must pass the client's Host unchanged (the C2 signature covers it)")
    # Grafana mounts.
    g = services["grafana"]
    gm = {v.split(":")[0]: v.split(":")[1] for v in g["volumes"] if v.startswith(".")}
    prov = yaml.safe_load(read("deploy/grafana/provisioning/dashboards/realstat.yml"))
    path = prov["providers"][0]["options"]["path"]
    if gm.get("./deploy/grafana/realstat-dashboard.json", "").rsplit("/", 1)[0] != path:
        err("deploy/grafana/provisioning/dashboards/realstat.yml",
            f"provider path {path} is not where docker-compose.yml mounts the dashboard")
    long_running = check_service_health(where, services)
    host_listeners = check_kafka(where, services)
    # The balancer's healthcheck asks nginx's loopback health server.
    lb_hc = " ".join(services["lb"].get("healthcheck", {}).get("test", []))
    m = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*)", lb_hc)
    if not m or not re.search(rf"listen\s+127\.0\.0\.1:{m.group(1)};[^}}]*location = {re.escape(m.group(2))} ",
                              nginx, re.S):
        err("deploy/compose/nginx.conf", f"no loopback server answering the lb healthcheck {lb_hc!r}")
    print(f"{len(services)} services, {len(replicas)} realstat replicas {replicas}, lb {lb_ip}; "
          f"healthchecks on every long-running service {long_running}; Kafka for the host at {host_listeners}")


def check_service_health(where, services):
    """Every long-running service (neither a one-shot, restart: "no", nor a tool behind a profile)
    has a healthcheck of its own, depends_on conditions agree with what they wait for, and ports
    are published on the host's loopback only. Returns the long-running services."""
    long_running = [n for n, s in services.items() if str(s.get("restart", "no")) != "no" and not s.get("profiles")]

    def has_healthcheck(name):
        hc = services.get(name, {}).get("healthcheck") or {}
        return not hc.get("disable") and hc.get("test") not in (None, [], "", ["NONE"], "NONE")
    for name in long_running:
        if not has_healthcheck(name):
            err(f"{where}: services.{name}", "a long-running service needs a healthcheck")
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep, how in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
            cond = how.get("condition", "service_started")
            if cond == "service_healthy" and not has_healthcheck(dep):
                err(f"{where}: services.{name}", f"waits for {dep} to be healthy, which has no healthcheck here")
            if cond == "service_completed_successfully" and str(services.get(dep, {}).get("restart", "no")) != "no":
                err(f"{where}: services.{name}", f"waits for {dep} to complete, which restarts")
        for port in svc.get("ports") or []:
            if not str(port).startswith("127.0.0.1:"):
                err(f"{where}: services.{name}", f"port {port} is published beyond 127.0.0.1")
    return long_running


def check_kafka(where, services):
    """Every advertised listener is a listener with a protocol; the host-facing one is published on
    the port it advertises. Returns the listeners advertised to the host."""
    kenv = services["kafka"]["environment"]
    listeners = dict(l.split("://") for l in kenv["KAFKA_LISTENERS"].split(","))
    protocols = dict(m.split(":") for m in kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    published = {p.split(":")[1]: p.split(":")[2] for p in services["kafka"].get("ports") or []}
    for adv in kenv["KAFKA_ADVERTISED_LISTENERS"].split(","):
        lname, hostport = adv.split("://")
        host, port = hostport.rsplit(":", 1)
        if lname not in listeners or lname not in protocols:
            err(f"{where}: services.kafka", f"advertised listener {lname} is not in KAFKA_LISTENERS and the protocol map")
        elif host in ("localhost", "127.0.0.1") and (published.get(port) != listeners[lname].rsplit(":", 1)[1]):
            err(f"{where}: services.kafka", f"{adv} is advertised to the host but not published as 127.0.0.1:{port}")
    host_listeners = [a for a in kenv["KAFKA_ADVERTISED_LISTENERS"].split(",")
                      if "://127.0.0.1:" in a or "://localhost:" in a]
    if not host_listeners:
        err(f"{where}: services.kafka", "no listener advertised to the host (127.0.0.1) for producing from outside")
    return host_listeners
