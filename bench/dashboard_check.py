"""The Grafana dashboard's queries, asked of a real Prometheus that scraped a detached soak.

No Grafana server can be installed on this machine (Debian's packages, PyPI and npm hold only
clients and libraries), so the dashboard (docs/grafana-perftui-soak.json, issue 22) is checked
one step short of the screen. Debian's `prometheus` (in its own process, stopped by `timeout`)
scrapes `perftui run --detach --metrics-port` every second while the detached run soaks
`perftui sim` (1 % answered 500, 16 bytes of internal heap lost per request, rare spikes) in
open loop. Near the end of the soak every panel's PromQL, with `$target` set to the run's
target, is asked of Prometheus's HTTP API over the soak (`query_range`, 5 s steps). Target:
every query returns at least one series with values, and the requests counter Prometheus last
scraped is within one scrape of the stored run's total. Each panel is drawn with plotext (text,
not Grafana) into bench/results/dashboard_<stamp>.txt; figures and series go to
bench/results/dashboard_<stamp>.json.

    .venv/bin/python bench/dashboard_check.py             # about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from common import LOOPBACK, PERFTUI, ServerProcess, free_port, log, machine_info, write_results

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "docs" / "grafana-perftui-soak.json"


class Sim(ServerProcess):
    name = "perftui sim"

    def command(self) -> list[str]:
        return [PERFTUI, "sim", "--host", LOOPBACK, "--port", str(self.port),
                "--error-rate", "0.01", "--leak-bytes", "16", "--spikes", "0.002",
                "--max-lifetime-s", str(int(self.max_seconds))]  # fmt: skip


class Prometheus(ServerProcess):
    name = "prometheus"

    def __init__(self, port: int, max_seconds: float, scrape_port: int, data: Path) -> None:
        super().__init__(port, max_seconds)
        self.config = data / "prometheus.yml"
        self.config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: perftui\n"
            f"    static_configs: [{{targets: ['{LOOPBACK}:{scrape_port}']}}]\n",
            encoding="utf-8",
        )
        self.data = data / "tsdb"

    def command(self) -> list[str]:
        return ["timeout", str(int(self.max_seconds)), "prometheus",
                f"--config.file={self.config}", f"--storage.tsdb.path={self.data}",
                f"--web.listen-address={LOOPBACK}:{self.port}"]  # fmt: skip


def api(port: int, verb: str, **params: Any) -> Any:
    url = f"http://{LOOPBACK}:{port}/api/v1/{verb}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    if body.get("status") != "success":
        raise RuntimeError(f"prometheus {verb}: {body}")
    return body["data"]["result"]


def prom_version() -> str:
    out = subprocess.run(["prometheus", "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).split()[2]


def panels() -> list[tuple[str, list[str]]]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [(p["title"], [t["expr"] for t in p.get("targets", [])]) for p in doc["panels"]]


def chart(title: str, series: list[dict[str, Any]], start: float) -> str:
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(100, 16)
    plt.theme("clear")
    for s in series[:6]:
        xs = [float(t) - start for t, _ in s["values"]]
        ys = [float(v) for _, v in s["values"]]
        shown = {
            k: v
            for k, v in s["metric"].items()
            if k not in ("target", "__name__", "instance", "job")
        }
        label = ",".join(f"{k}={v}" for k, v in shown.items()) or "value"
        plt.plot(xs, ys, label=label[:40])
    plt.title(title)
    plt.xlabel("seconds into the soak")
    return plt.uncolorize(plt.build())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=90, help="the soak's long phase")
    ap.add_argument("--rate", type=float, default=40.0, help="open-loop rate, req/s")
    args = ap.parse_args()
    if not shutil.which("prometheus"):
        sys.exit("dashboard_check: needs Debian's prometheus (apt-get install prometheus)")
    lifetime = args.seconds + 90
    sim_port, metrics_port, prom_port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="perftui-dash-") as tmp:
        history = Path(tmp) / "history"
        with Sim(sim_port, lifetime), Prometheus(prom_port, lifetime, metrics_port, Path(tmp)):
            argv = [PERFTUI, "run", LOOPBACK, "--port", str(sim_port),
                    "--history-dir", str(history), "--runs", "1", "--burst-duration", "3",
                    "--long-duration", str(args.seconds), "--rate", str(args.rate),
                    "--paths", "/hello,/api/ping", "--heap-poll-s", "2",
                    "--metrics-port", str(metrics_port), "--detach"]  # fmt: skip
            started = time.time()
            out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
            log(f"detached run {out.stdout.strip()}; prometheus on {prom_port}")
            time.sleep(args.seconds - 5)
            end = time.time()
            targets = api(prom_port, "query", query="group by (target) (perftui_requests_total)")
            target = targets[0]["metric"]["target"]
            results = []
            for title, exprs in panels():
                for expr in exprs:
                    query = expr.replace("$target", target)
                    data = api(prom_port, "query_range", query=query,
                               start=started, end=end, step=5)  # fmt: skip
                    points = sum(len(s["values"]) for s in data)
                    results.append({"panel": title, "expr": query, "series": len(data),
                                    "points": points, "data": data})  # fmt: skip
                    log(f"{title}: {query[:70]} → {len(data)} series, {points} points")
            while not (history / "latest.json").exists() and time.time() < started + lifetime:
                time.sleep(1)  # the run's end: its record stored
            last = api(prom_port, "query", query="sum(last_over_time(perftui_requests_total[5m]))")
        record = json.loads((history / "latest.json").read_text(encoding="utf-8"))
    stored = sum(
        res["report"]["requests_total"] for run in record["raw_runs"] for res in run["results"]
    )
    scraped = float(last[0]["value"][1]) if last else 0.0
    long = record["raw_runs"][0]["results"][-1]["report"]  # the stored truth beside the panel
    stored_ms = {q: long.get(f"{q}_ms") for q in ("p50", "p95", "p99")}
    by_panel: dict[str, list[dict[str, Any]]] = {}
    for r in results:  # a panel's queries drawn together, as the dashboard does
        name = r["expr"].split("(")[1].split(",")[0] if "quantile" in r["expr"] else ""
        for series in r["data"]:
            series["metric"] = {**series["metric"], **({"q": name} if name else {})}
            by_panel.setdefault(r["panel"], []).append(series)
    charts = "\n\n".join(chart(title, data, started) for title, data in by_panel.items())
    ok = all(r["series"] > 0 for r in results) and stored - scraped <= args.rate * 1.5
    for r in results:
        r.pop("data")
    lines = ["| panel | query | series | points |", "|---|---|---|---|"]
    lines += [f"| {r['panel']} | `{r['expr']}` | {r['series']} | {r['points']} |" for r in results]
    table = "\n".join(lines)
    print(table)
    print(f"requests: stored {stored}, Prometheus's last scrape {scraped:.0f}; met: {ok}")
    print(f"the stored long phase's percentiles (ms): {stored_ms}; load {os.getloadavg()}")
    path = write_results("dashboard", {"benchmark": "dashboard", "machine": machine_info(),
                                       "command": " ".join(sys.argv), "target": target,
                                       "results": results, "stored_requests": stored,
                                       "scraped_requests": scraped, "stored_ms": stored_ms,
                                       "met": ok})  # fmt: skip
    head = (
        f"The panels of docs/grafana-perftui-soak.json: each query asked of Prometheus "
        f"{prom_version()} scraping a detached soak, drawn by plotext (not Grafana).\n"
        f"`{' '.join(sys.argv)}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
    )
    path.with_suffix(".txt").write_text(head + charts + "\n", encoding="utf-8")
    log(f"wrote {path} and {path.with_suffix('.txt')}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
