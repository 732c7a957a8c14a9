#!/usr/bin/env python3
"""Folds bench/compare.sh's raw CSV into report.md and gnuplot PNGs.

  report.py RESULTS_DIR

RESULTS_DIR holds results.csv (suite,workload,system,round,metric,value),
machine.txt (key: value lines written by compare.sh) and optionally
analysis.md (hand-written reading of the run, included verbatim).
"""

import csv
import math
import os
import statistics
import subprocess
import sys
from collections import OrderedDict, defaultdict

HIGHER_BETTER = {"ops_per_s", "keys_per_s", "events"}
UNITS = {
    "ops_per_s": ("ops/s", 1),
    "keys_per_s": ("keys/s", 1),
    "p50_ms": ("ms", 1),
    "p99_ms": ("ms", 1),
    "p50_us": ("µs", 1),
    "p99_us": ("µs", 1),
    "bytes": ("MB", 1e-6),
    "rss_kb": ("MB", 1e-3),
    "secs": ("s", 1),
    "ms": ("ms", 1),
}
# Cells that are not comparable with the rest of their row: shown with a mark,
# left out when picking the best peer, explained under the table.
NOT_COMPARABLE = [
    (
        "embedded",
        ("batch_put_durable", "put_durable"),
        "sled",
        "sled 0.34's flush() ends with sync_file_range(2) on Linux, which neither flushes the device's "
        "write cache nor the file's metadata: it is not an fsync, so its 'durable' numbers are not "
        "comparable and it is not counted as best peer on these rows.",
    ),
    (
        "watch",
        ("",),
        "nats",
        "nats-server 2.9 fsyncs its JetStream file store periodically (every 2 minutes), not per write, so its "
        "write→event path has no fsync in it while cairn's and etcd's do: shown, not counted as best peer.",
    ),
    (
        "cost",
        ("load",),
        "nats",
        "nats-server 2.9 does not fsync per write (see the watch suite): its load rate is not counted as best peer.",
    ),
]


def not_comparable(suite, workload, system):
    for s, prefixes, sys_, note in NOT_COMPARABLE:
        if s == suite and sys_ == system and workload.startswith(prefixes):
            return note
    return None

SUITE_TITLES = OrderedDict(
    [
        ("resp", "RESP (redis-benchmark, -c 50)"),
        ("http", "HTTP (hey; every write fsynced)"),
        ("watch", "Watch: write→notification latency"),
        ("embedded", "Embedded (one process, no network)"),
        ("cost", "Cost: bulk load, memory, disk, restart"),
    ]
)

SUITE_NOTES = {
    "resp": "redis-benchmark `-c 50 -r 10000 -d 128`, with `-P 1` and `-P 16`. *buffered*: cairn `--durability "
    "relaxed` against Redis `appendfsync everysec`. *fsync*: cairn `sync` against Redis `appendfsync always`. "
    "MSET sets 10 keys per request.",
    "http": "hey with 1 and 64 connections. cairn: `PUT`/`GET /v1/stores/default/keys/{key}` with `sync`. etcd: "
    "`POST /v3/kv/put` and `/v3/kv/range` through its JSON gateway, with base64 keys and values.",
    "watch": "One writer puts a new key under one prefix 100 times a second; N watchers follow that prefix. "
    "cairn: SSE `GET /v1/watch?prefix=`. etcd: gateway `POST /v3/watch`. NATS: a KV push consumer. Latency runs "
    "from just before the write request is sent to the watcher's socket read; the helper takes the time before "
    "it parses.",
    "embedded": "One process, one thread unless stated; keys are `user:` + 12 digits, values 128 bytes. *durable*: "
    "cairn `sync`, fjall `PersistMode::SyncAll`, redb `Durability::Immediate`, sled `flush()`. *buffered*: cairn "
    "`relaxed`, fjall `Buffer`, redb `Durability::None`, sled's default. The load runs in batches of 1000 in "
    "scattered key order; reads and buffered puts run after a reopen.",
    "cost": "Each system's bulk path, 500 keys per request: RESP MSET (cairn, Redis), an etcd txn, or NATS publishes "
    "pipelined with acks. cairn runs `sync`, Redis `appendfsync always`. RSS is the server's VmHWM; disk is `du` "
    "of its data dir after a clean stop; restart runs from spawn to the first answered GET of a loaded key.",
}


def fmt(v, metric):
    unit, scale = UNITS.get(metric, ("", 1))
    x = v * scale
    if x >= 100:
        s = f"{x:,.0f}"
    elif x >= 10:
        s = f"{x:.1f}"
    elif x >= 0.1:
        s = f"{x:.2f}"
    else:
        s = f"{x:.2g}"
    return s


def ratio(adv):
    return f"{adv:.2f}×" if adv >= 0.1 else f"{adv:.2g}×"


def label(metric):
    unit = UNITS.get(metric, ("", 1))[0]
    name = {"ops_per_s": "throughput", "keys_per_s": "rate", "rss_kb": "peak RSS", "bytes": "size", "secs": "time", "ms": "time"}
    return f"{name.get(metric, metric.split('_')[0])} ({unit}) {'↑' if metric in HIGHER_BETTER else '↓'}"


def load(results):
    rows = defaultdict(lambda: defaultdict(list))  # (suite, workload, metric) -> system -> [values]
    order = []
    with open(os.path.join(results, "results.csv")) as f:
        for r in csv.DictReader(f):
            k = (r["suite"], r["workload"], r["metric"])
            if k not in rows:
                order.append(k)
            rows[k][r["system"]].append(float(r["value"]))
    return rows, order


def machine(results):
    info = OrderedDict()
    path = os.path.join(results, "machine.txt")
    if os.path.exists(path):
        for line in open(path):
            if ":" in line:
                k, v = line.split(":", 1)
                info[k.strip()] = v.strip()
    return info


def advantage(cairn, peer, metric):
    """How many times better cairn is than the peer (>1: cairn better)."""
    if cairn <= 0 or peer <= 0:
        return None
    return cairn / peer if metric in HIGHER_BETTER else peer / cairn


def table(rows, order, suite):
    keys = [k for k in order if k[0] == suite]
    if not keys:
        return [], []
    systems = []
    for k in keys:
        for s in rows[k]:
            if s not in systems:
                systems.append(s)
    systems.sort(key=lambda s: (s != "cairn", s))
    head = "| workload | metric | " + " | ".join(systems) + " | best peer | cairn vs best peer |"
    out = [head, "|" + "---|" * (len(systems) + 4)]
    ratios, notes = [], []
    for k in keys:
        _, workload, metric = k
        cells, med = [], {}
        for s in systems:
            vals = rows[k].get(s)
            if not vals:
                cells.append("—")
                continue
            m = statistics.median(vals)
            note = not_comparable(suite, workload, s)
            mark = ""
            if note:
                if note not in notes:
                    notes.append(note)
                mark = " " + "†" * (notes.index(note) + 1)
            else:
                med[s] = m
            cells.append(f"{fmt(m, metric)} ({fmt(min(vals), metric)}–{fmt(max(vals), metric)}){mark}")
        if "cairn" in rows[k] and "cairn" not in med:
            med["cairn"] = statistics.median(rows[k]["cairn"])
        peers = {s: v for s, v in med.items() if s != "cairn"}
        best, verdict = "—", "—"
        if peers and "cairn" in med:
            pick = max if metric in HIGHER_BETTER else min
            best = pick(peers, key=peers.get)
            adv = advantage(med["cairn"], peers[best], metric)
            if adv is not None:
                word = "better" if adv >= 1.05 else ("worse" if adv <= 0.95 else "on par")
                verdict = f"{ratio(adv)} ({word})"
                ratios.append((suite, workload, metric, best, adv))
        out.append(f"| {workload} | {label(metric)} | " + " | ".join(cells) + f" | {best} | {verdict} |")
    for i, note in enumerate(notes):
        out += ["", "†" * (i + 1) + " " + note]
    return out, ratios


def gnuplot_bars(results, rows, order, suite, metrics, name, title, ylabel, log):
    keys = [k for k in order if k[0] == suite and k[2] in metrics]
    if not keys:
        return None
    systems = sorted({s for k in keys for s in rows[k]}, key=lambda s: (s != "cairn", s))
    scale = UNITS.get(keys[0][2], ("", 1))[1]
    lows = [min(v) * scale for k in keys for v in rows[k].values() if v and min(v) > 0]
    ymin = 10 ** math.floor(math.log10(min(lows))) if log and lows else 0
    dat = os.path.join(results, f"{name}.dat")
    with open(dat, "w") as f:
        for k in keys:
            label = k[1] if len(metrics) == 1 else f"{k[1]} {k[2].split('_')[0]}"
            cols = []
            for s in systems:
                v = rows[k].get(s)
                cols += [f"{statistics.median(v) * scale:g}", f"{min(v) * scale:g}", f"{max(v) * scale:g}"] if v else ["?"] * 3
            f.write('"%s" %s\n' % (label.replace('"', "'"), " ".join(cols)))
    plots = []
    for i, s in enumerate(systems):
        c = 2 + 3 * i
        xt = ":xtic(1)" if i == 0 else ""
        plots.append(f"'{dat}' using {c}:{c + 1}:{c + 2}{xt} title '{s}'")
    width = max(800, 90 * len(keys) * max(1, len(systems) // 2) + 200)
    script = f"""
set terminal pngcairo noenhanced size {width},480 font 'DejaVu Sans,10'
set output '{os.path.join(results, name + ".png")}'
set title "{title}"
set ylabel "{ylabel}"
set datafile missing "?"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -25 scale 0
set key top right
set grid ytics
set yrange [{ymin:g}:*]
{"set logscale y" if log else ""}
plot {", ".join(plots)}
"""
    try:
        subprocess.run(["gnuplot"], input=script.encode(), check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        err = getattr(e, "stderr", b"") or b""
        print(f"report: gnuplot failed for {name}: {e} {err.decode(errors='replace')[:500]}", file=sys.stderr)
        return None
    finally:
        os.remove(dat)
    return name + ".png"


PLOTS = [
    # suite, metrics, file, title, y label, log scale
    ("resp", {"ops_per_s"}, "resp_throughput", "RESP throughput (median, min–max bars)", "requests/s", True),
    ("resp", {"p50_ms"}, "resp_p50", "RESP latency p50", "ms", True),
    ("resp", {"p99_ms"}, "resp_p99", "RESP latency p99", "ms", True),
    ("http", {"ops_per_s"}, "http_throughput", "HTTP throughput", "requests/s", True),
    ("http", {"p50_ms", "p99_ms"}, "http_latency", "HTTP latency", "ms", True),
    ("watch", {"p50_ms", "p99_ms"}, "watch_latency", "Write→notification latency", "ms", True),
    ("embedded", {"ops_per_s"}, "embedded_throughput", "Embedded throughput", "ops/s", True),
    ("embedded", {"p50_us", "p99_us"}, "embedded_latency", "Embedded durable put latency (1 writer)", "µs", True),
    ("cost", {"rss_kb"}, "cost_rss", "Peak RSS while loading", "MB", False),
    ("cost", {"bytes"}, "cost_disk", "On-disk bytes after load", "MB", False),
    ("cost", {"secs"}, "cost_restart", "Restart to first served GET", "s", False),
    ("cost", {"keys_per_s"}, "cost_load", "Bulk load rate", "keys/s", False),
]


def main():
    results = sys.argv[1]
    rows, order = load(results)
    info = machine(results)
    md = [f"# cairn vs peers — {info.get('date', '')}", ""]
    md += ["## Machine and run", ""]
    md += [f"- **{k}**: {v}" for k, v in info.items()]
    md += [
        "",
        "Each cell: median over the rounds, then (min–max). The last column divides cairn's median by the "
        "best peer's so that >1 always means cairn is better (higher throughput, or lower latency/size/time); "
        "'on par' is within 5%. ↑ = higher is better, ↓ = lower is better.",
        "",
    ]
    all_ratios = []
    for suite, title in SUITE_TITLES.items():
        lines, ratios = table(rows, order, suite)
        if not lines:
            continue
        all_ratios += ratios
        md += [f"## {title}", ""]
        if suite in SUITE_NOTES:
            md += [SUITE_NOTES[suite], ""]
        md += lines + [""]
        for p in PLOTS:
            if p[0] != suite:
                continue
            png = gnuplot_bars(results, rows, order, *p)
            if png:
                md += [f"![{p[3]}]({png})", ""]
    if all_ratios:
        md += ["## Summary: cairn vs best peer", ""]
        md += [
            "cairn's advantage over the best peer per metric (>1: cairn better, <1: cairn worse).",
            "",
            "| suite | workload | best peer | throughput | p50 | p99 | other |",
            "|---|---|---|---|---|---|---|",
        ]
        grouped = OrderedDict()
        for suite, w, m, best, adv in all_ratios:
            col = {"ops_per_s": 0, "keys_per_s": 0, "p50_ms": 1, "p50_us": 1, "p99_ms": 2, "p99_us": 2}.get(m, 3)
            g = grouped.setdefault((suite, w), {"best": [], "cols": [""] * 4})
            if best not in g["best"]:
                g["best"].append(best)
            g["cols"][col] = ratio(adv) + (f" ({label(m).split(' (')[0]})" if col == 3 else "")
        for (suite, w), g in grouped.items():
            md.append(f"| {suite} | {w} | {', '.join(g['best'])} | " + " | ".join(g["cols"]) + " |")
        wins = sum(1 for r in all_ratios if r[4] >= 1.05)
        par = sum(1 for r in all_ratios if 0.95 < r[4] < 1.05)
        losses = sum(1 for r in all_ratios if r[4] <= 0.95)
        md += ["", f"Over {len(all_ratios)} measurements cairn is better on {wins}, on par on {par}, worse on {losses}.", ""]
    analysis = os.path.join(results, "analysis.md")
    if os.path.exists(analysis):
        md += [open(analysis).read().rstrip(), ""]
    with open(os.path.join(results, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(os.path.join(results, "report.md"))


if __name__ == "__main__":
    main()
