#!/usr/bin/env python3
"""hack/bench.sh's report (standard library only).

  bench-report.py annotate RESULT.json --audit-log LOG --dns-log LOG
      adds to bench-watch's RESULT.json the apiserver requests of its measured window by client (from
      the audit log: one event per request, at RequestReceived) and the DNS queries the cluster's
      recorder logged during the whole run
  bench-report.py table --datasets N --nodes M --timeout S --svg FILE SYSTEM=RESULT.json...
      prints one Markdown table comparing the systems (ratio column: Fluid / ferrofluid) and writes
      the time-to-Bound CDF plot as SVG
  bench-report.py phases DIR/SYSTEM...
      prints the arrivals and deletion phases (bench-phases' DIR/SYSTEM-arrivals.json and
      DIR/SYSTEM-deletion.json, where present) as one Markdown table
"""

import argparse
import json
import math
from datetime import datetime

LABELS = {"ferrofluid": "ferrofluid", "fluid": "Fluid v1.0.8"}
COLORS = {"ferrofluid": "#d9480f", "fluid": "#1971c2"}


def ms_of(timestamp):
    """RFC 3339 with a Z (the audit log's microsecond timestamps) → milliseconds since the epoch."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000


def client_of(user_agent):
    """The program part of a user agent ('kube-scheduler/v1.34.4 (linux/amd64) ...' → 'kube-scheduler')."""
    return user_agent.split("/", 1)[0] if user_agent else "(no user agent)"


def annotate(args):
    with open(args.result) as f:
        result = json.load(f)
    start, end = result["start"]["ms"], result["end"]["ms"]
    by_client, by_client_verb, execs = {}, {}, 0
    with open(args.audit_log) as f:
        for line in f:
            event = json.loads(line)
            if not start <= ms_of(event["requestReceivedTimestamp"]) <= end:
                continue
            client = client_of(event.get("userAgent", ""))
            by_client[client] = by_client.get(client, 0) + 1
            ref = event.get("objectRef", {})
            resource = "/".join(filter(None, (ref.get("resource"), ref.get("subresource"))))
            key = f'{client} {event.get("verb", "")} {resource or event.get("requestURI", "")}'
            by_client_verb[key] = by_client_verb.get(key, 0) + 1
            if ref.get("subresource") == "exec":
                execs += 1
    result["audit"] = {"by_client": by_client, "by_client_verb": by_client_verb, "pod_execs": execs}
    with open(args.dns_log) as f:
        queries = [line.rstrip("\n") for line in f if line.strip()]
    result["dns_queries"] = {"count": len(queries), "first": queries[:10]}
    with open(args.result, "w") as f:
        json.dump(result, f, indent=2)


def percentile(values, p):
    """Nearest-rank percentile of a sorted list (None for an empty one)."""
    if not values:
        return None
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def delta(result, *path):
    """end minus start of the number at PATH in the two snapshots (None when missing)."""
    def at(snapshot):
        v = snapshot
        for key in path:
            if not isinstance(v, dict) or key not in v:
                return None
            v = v[key]
        return v
    a, b = at(result["start"]), at(result["end"])
    return None if a is None or b is None else b - a


def summarize(result, n):
    """The figures of one system's run."""
    ds = result["datasets"].values()
    t0 = min(d["created_ms"] for d in ds)
    lat = sorted((d["bound_ms"] - d["created_ms"]) / 1000 for d in ds if d["bound_ms"] is not None)
    pvc_lat = sorted((d["pvc_bound_ms"] - d["created_ms"]) / 1000 for d in ds if d["pvc_bound_ms"] is not None)
    all_bound = result["all_bound_ms"]
    s = {
        "latencies": lat,
        "bound": len(lat),
        "pvcs_bound": len(pvc_lat),
        "all_bound_s": None if all_bound is None else (all_bound - t0) / 1000,
        "all_pvcs_s": None if result["all_pvcs_bound_ms"] is None else (result["all_pvcs_bound_ms"] - t0) / 1000,
        "pvcs_at_all_bound": None if all_bound is None else sum(
            1 for d in ds if d["pvc_bound_ms"] is not None and d["pvc_bound_ms"] <= all_bound),
        # Datasets never Bound count as slower than every Bound one.
        "p50": percentile(lat + [math.inf] * (n - len(lat)), 50),
        "p99": percentile(lat + [math.inf] * (n - len(lat)), 99),
        "pvc_p50": percentile(pvc_lat + [math.inf] * (n - len(pvc_lat)), 50),
        "pvc_p99": percentile(pvc_lat + [math.inf] * (n - len(pvc_lat)), 99),
        "window_s": (result["end"]["ms"] - result["start"]["ms"]) / 1000,
        "left_bound": sum(1 for d in ds if d.get("left_bound", 0) > 0),
    }
    for who in ("dataset-controller", "runtime-controller", "kube-apiserver", "etcd"):
        s[f"{who} cpu"] = delta(result, "processes", who, "cpu_s")
        s[f"{who} children cpu"] = delta(result, "processes", who, "children_cpu_s")
        hwm = result["end"]["processes"].get(who, {}).get("hwm_kib")
        s[f"{who} rss"] = None if hwm is None else hwm / 1024
    for who in ("dataset-controller", "runtime-controller"):
        own = [delta(result, "metrics", who, fam, "total")
               for fam in ("ferrofluid_api_requests_total", "rest_client_requests_total")]
        own = [v for v in own if v is not None]
        s[f"{who} requests"] = sum(own) if own else None
    s["apiserver requests"] = delta(result, "apiserver", "apiserver_request_total", "total")
    reqs = [s[f"{w} requests"] for w in ("dataset-controller", "runtime-controller")]
    s["requests per dataset"] = None if None in reqs else sum(reqs) / n
    cpus = [s[f"{w} cpu"] for w in ("dataset-controller", "runtime-controller")]
    s["cpu per dataset"] = None if None in cpus else sum(cpus) * 1000 / n
    audit = result.get("audit", {}).get("by_client", {})
    s["audit"] = audit
    s["helm requests"] = audit.get("Helm", 0)
    s["execs"] = result.get("audit", {}).get("pod_execs")
    s["dns"] = result.get("dns_queries", {}).get("count")
    return s


def fmt(v, unit="", digits=1):
    """A time or size with its unit and DIGITS decimals; a count (no unit) as an integer."""
    if v is None:
        return "–"
    if v == math.inf:
        return "not Bound"
    return f"{v:.{digits}f}{unit}" if unit else f"{v:.0f}"


def table(args):
    systems = []
    for spec in args.results:
        name, path = spec.split("=", 1)
        with open(path) as f:
            systems.append((name, summarize(json.load(f), args.datasets)))
    names = [n for n, _ in systems]
    by = dict(systems)

    def timed(s, key, count):
        if s[key] is None:
            return f"> {args.timeout} s ({s[count]} of {args.datasets} Bound)"
        return fmt(s[key], " s")

    rows = [
        ("time to all Datasets Bound", lambda s: timed(s, "all_bound_s", "bound"), "all_bound_s"),
        ("time to all PVCs Bound", lambda s: timed(s, "all_pvcs_s", "pvcs_bound"), "all_pvcs_s"),
        ("PVCs Bound when the last Dataset was", lambda s: fmt(s["pvcs_at_all_bound"]), None),
        ("Datasets seen leaving Bound (flaps)", lambda s: fmt(s["left_bound"]), None),
        ("per dataset: time to Bound, p50", lambda s: fmt(s["p50"], " s"), "p50"),
        ("per dataset: time to Bound, p99", lambda s: fmt(s["p99"], " s"), "p99"),
        ("per dataset: time to PVC Bound, p50 / p99",
         lambda s: f'{fmt(s["pvc_p50"], " s")} / {fmt(s["pvc_p99"], " s")}', None),
        ("dataset-controller CPU", lambda s: fmt(s["dataset-controller cpu"], " s", 2), "dataset-controller cpu"),
        ("runtime-controller CPU (with its child processes)",
         lambda s: fmt(s["runtime-controller cpu"], " s", 2), "runtime-controller cpu"),
        ("… of which child processes (Fluid: ddc-helm)",
         lambda s: fmt(s["runtime-controller children cpu"], " s", 2), "runtime-controller children cpu"),
        ("dataset-controller peak RSS", lambda s: fmt(s["dataset-controller rss"], " MiB"), "dataset-controller rss"),
        ("runtime-controller peak RSS", lambda s: fmt(s["runtime-controller rss"], " MiB"), "runtime-controller rss"),
        ("apiserver requests, all clients", lambda s: fmt(s["apiserver requests"]), "apiserver requests"),
        ("… sent by the dataset-controller", lambda s: fmt(s["dataset-controller requests"]),
         "dataset-controller requests"),
        ("… sent by the runtime-controller", lambda s: fmt(s["runtime-controller requests"]),
         "runtime-controller requests"),
        ("controllers' requests per dataset", lambda s: fmt(s["requests per dataset"], " ", 1).strip(),
         "requests per dataset"),
        ("controllers' CPU per dataset (with child processes)", lambda s: fmt(s["cpu per dataset"], " ms", 0),
         "cpu per dataset"),
        ("… sent by helm (audit log)", lambda s: fmt(s["helm requests"]), "helm requests"),
        ("… exec into worker pods (audit log)", lambda s: fmt(s["execs"]), "execs"),
        ("kube-apiserver CPU", lambda s: fmt(s["kube-apiserver cpu"], " s", 2), "kube-apiserver cpu"),
        ("etcd CPU", lambda s: fmt(s["etcd cpu"], " s", 2), "etcd cpu"),
        ("DNS queries recorded (whole run)", lambda s: fmt(s["dns"]), None),
    ]
    ratio = "ferrofluid" in by and "fluid" in by
    # Costs compare only when both systems did the same work: every Dataset and PVC Bound.
    comparable = ratio and all(by[n]["all_bound_s"] is not None and by[n]["all_pvcs_s"] is not None
                               for n in ("ferrofluid", "fluid"))
    head = ["", *(LABELS.get(n, n) for n in names)] + (["Fluid / ferrofluid"] if ratio else [])
    print(f"{args.datasets} datasets over {args.nodes} kwok nodes, each system on a fresh local cluster "
          f"(measured window: creation to the last Dataset and PVC Bound)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, show, key in rows:
        cells = [label, *(show(by[n]) for n in names)]
        if ratio:
            a, b = (by["ferrofluid"].get(key) if key else None), (by["fluid"].get(key) if key else None)
            ok = comparable and all(isinstance(v, (int, float)) and math.isfinite(v) for v in (a, b))
            cells.append(f"{b / a:.1f}×" if ok and a > 0 else "–")
        print("| " + " | ".join(cells) + " |")
    print()
    for n in names:
        audit = by[n]["audit"]
        if audit:
            parts = ", ".join(f"{k} {v}" for k, v in sorted(audit.items(), key=lambda kv: -kv[1]))
            print(f"{LABELS.get(n, n)}: apiserver requests by user agent (audit log): {parts}")
    if args.svg:
        write_svg(args, [(n, by[n]) for n in names])


def phases(args):
    """The arrivals and deletion phases of each system, one column per system."""
    found = []
    for prefix in args.prefixes:
        name = prefix.rstrip("/").rsplit("/", 1)[-1]
        got = {}
        for phase in ("arrivals", "deletion"):
            try:
                with open(f"{prefix}-{phase}.json") as f:
                    got[phase] = json.load(f)["summary"]
            except FileNotFoundError:
                pass
        if got:
            found.append((name, got))
    if not found:
        return
    def arr(key, unit=" s"):
        return lambda g: fmt(g["arrivals"].get(key), unit, 1) if "arrivals" in g else "–"
    def gone(g):
        d = g.get("deletion")
        if d is None:
            return "–"
        if d["all_gone_s"] is not None:
            return fmt(d["all_gone_s"], " s")
        left = ", ".join(f"{k} {v}" for k, v in d["left"].items() if v)
        return f"not within {d['timeout_s']} s (left: {left})"
    def kind_gone(kind):
        return lambda g: fmt(g["deletion"]["gone_s"].get(kind), " s") if "deletion" in g else "–"
    rows = [
        ("arrivals: pairs created (rate per s)",
         lambda g: f'{g["arrivals"]["pairs"]} ({g["arrivals"]["rate_per_s"]:g}/s)' if "arrivals" in g else "–"),
        ("arrivals: Datasets / PVCs Bound",
         lambda g: f'{g["arrivals"]["bound"]} / {g["arrivals"]["pvcs_bound"]}' if "arrivals" in g else "–"),
        ("arrivals: time to Bound p50 / p99 / max",
         lambda g: " / ".join(fmt(g["arrivals"].get(k), " s") for k in ("bound_p50_s", "bound_p99_s", "bound_max_s"))
         if "arrivals" in g else "–"),
        ("arrivals: time to PVC Bound p50 / p99",
         lambda g: " / ".join(fmt(g["arrivals"].get(k), " s") for k in ("pvc_bound_p50_s", "pvc_bound_p99_s"))
         if "arrivals" in g else "–"),
        ("deletion: objects at the start",
         lambda g: ", ".join(f"{k} {v}" for k, v in g["deletion"]["at_start"].items() if v) if "deletion" in g else "–"),
        ("deletion: everything gone", gone),
        ("deletion: Datasets gone", kind_gone("datasets")),
        ("deletion: node labels gone", kind_gone("node_labels")),
        ("deletion: PVs gone", kind_gone("pvs")),
    ]
    head = ["", *(LABELS.get(n, n) for n, _ in found)]
    print("\nAfter the burst: steady arrivals on the loaded cluster, then everything deleted at once "
          "(\"–\": phase not run; not Bound counts as slower than every Bound one)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, show in rows:
        print("| " + " | ".join([label, *(show(g) for _, g in found)]) + " |")


def nice_step(span, ticks=6):
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def write_svg(args, systems):
    """Step plot of each system's time-to-Bound CDF."""
    w, h, left, right, top, bottom = 760, 480, 70, 30, 90, 60
    pw, ph = w - left - right, h - top - bottom
    xmax = max((s["latencies"][-1] for _, s in systems if s["latencies"]), default=1.0)
    step = nice_step(xmax)
    xmax = math.ceil(xmax / step) * step
    x = lambda v: left + pw * v / xmax
    y = lambda f: top + ph * (1 - f)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           'font-family="sans-serif" font-size="13">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="24" text-anchor="middle" font-size="15">Time from creation to Bound, '
           f'{args.datasets} datasets over {args.nodes} kwok nodes</text>']
    for i in range(int(round(xmax / step)) + 1):
        v = i * step
        out.append(f'<line x1="{x(v):.1f}" y1="{top}" x2="{x(v):.1f}" y2="{top + ph}" stroke="#e9ecef"/>')
        out.append(f'<text x="{x(v):.1f}" y="{top + ph + 18}" text-anchor="middle">{v:g}</text>')
    for f in (0, 0.25, 0.5, 0.75, 1):
        out.append(f'<line x1="{left}" y1="{y(f):.1f}" x2="{left + pw}" y2="{y(f):.1f}" stroke="#e9ecef"/>')
        out.append(f'<text x="{left - 8}" y="{y(f) + 4:.1f}" text-anchor="end">{int(f * 100)}%</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#495057"/>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 18}" text-anchor="middle">seconds from the pair\'s creation '
               'to its Dataset Bound</text>')
    out.append(f'<text transform="translate(18 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
               'datasets Bound</text>')
    legend = []  # one line per system between the title and the plot
    for i, (name, s) in enumerate(systems):
        lat, color = s["latencies"], COLORS.get(name, "#495057")
        pts = [(x(0), y(0))]
        for k, v in enumerate(lat):
            pts += [(x(v), y(k / args.datasets)), (x(v), y((k + 1) / args.datasets))]
        if lat:
            pts.append((x(xmax), y(len(lat) / args.datasets)))
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        ly = 46 + 20 * i
        done = (f'p50 {fmt(s["p50"], " s")}, p99 {fmt(s["p99"], " s")}' if s["bound"] == args.datasets else
                f'{s["bound"]} of {args.datasets} Bound within the run (p50 {fmt(s["p50"], " s")})')
        legend.append(f'<line x1="{left}" y1="{ly}" x2="{left + 25}" y2="{ly}" stroke="{color}" stroke-width="3"/>')
        legend.append(f'<text x="{left + 32}" y="{ly + 4}">{LABELS.get(name, name)}: {done}</text>')
    out += legend
    out.append("</svg>")
    with open(args.svg, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("annotate")
    a.add_argument("result")
    a.add_argument("--audit-log", required=True)
    a.add_argument("--dns-log", required=True)
    t = sub.add_parser("table")
    t.add_argument("--datasets", type=int, required=True)
    t.add_argument("--nodes", type=int, required=True)
    t.add_argument("--timeout", type=int, required=True)
    t.add_argument("--svg")
    t.add_argument("results", nargs="+", metavar="SYSTEM=RESULT.json")
    ph = sub.add_parser("phases")
    ph.add_argument("prefixes", nargs="+", metavar="DIR/SYSTEM")
    args = p.parse_args()
    {"annotate": annotate, "table": table, "phases": phases}[args.cmd](args)


if __name__ == "__main__":
    main()
