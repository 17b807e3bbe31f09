#!/usr/bin/python3
"""Draws scale_bench's PNG from its JSON report: QPS at recall@10 0.95 vs n
(single-query and batched) and memory vs n (the field / index, and the
process RSS), Quiver and hnswlib, one line style per data set.

Usage: /usr/bin/python3 bench/scale_plot.py scale_bench.json scale_bench.png
Needs matplotlib (Debian: python3-matplotlib).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display: write the file only
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

TARGET = "0.95"
COLORS = {"quiver": "#d62728", "hnswlib": "#1f77b4"}
NAMES = {"quiver": "Quiver (gRPC)", "hnswlib": "hnswlib (in process)"}
STYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D"]


def size_name(n):
    if n % 1000000 == 0:
        return "%dM" % (n // 1000000)
    if n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def qps_at(cell, system, mode):
    """(QPS, floor): floor when the smallest swept ef already passed the
    target, so the QPS is that ef's, a lower bound."""
    entry = cell["qps_at_recall"][system][mode].get(TARGET)
    if entry is None or entry.get("qps") is None:
        return None
    return entry["qps"], bool(entry.get("floor"))


def memory(cell, system, kind):
    if kind == "index":
        if system == "quiver":
            return cell["quiver"]["field_memory_bytes"] / 2**20
        return cell["hnswlib"]["index_bytes"] / 2**20
    kb = (cell["quiver"]["rss_indexed_kb"] if system == "quiver"
          else cell["hnswlib"]["process_rss_kb"])
    return None if kb is None or kb < 0 else kb / 1024


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        report = json.load(f)
    cells = report["cells"]
    sets = []
    for c in cells:
        if c["set"] not in sets:
            sets.append(c["set"])
    cfg = report["config"]
    panels = [
        ("single-query QPS at recall@10 " + TARGET + "\n(1 client thread, 1 query per call)",
         "queries per second", lambda c, s: qps_at(c, s, "single")),
        ("batched QPS at recall@10 " + TARGET + "\n(1 thread, %d queries per call)" % cfg["batch"],
         "queries per second", lambda c, s: qps_at(c, s, "batched")),
        ("index memory\n(Quiver: describe memory_bytes of the field; hnswlib: vectors + links"
         " + labels)",
         "MiB", lambda c, s: memory(c, s, "index")),
        ("process RSS\n(quiverd with the indexed collection; hnswlib process holding its index)",
         "MiB", lambda c, s: memory(c, s, "rss")),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(13, 10))
    for ax, (title, ylabel, value) in zip(axes.flat, panels):
        for si, name in enumerate(sets):
            rows = sorted((c for c in cells if c["set"] == name), key=lambda c: c["n"])
            for system in ("quiver", "hnswlib"):
                pts = []
                for c in rows:
                    v = value(c, system)
                    if v is None:
                        continue
                    pts.append((c["n"],) + (v if isinstance(v, tuple) else (v, False)))
                if not pts:
                    continue
                style = dict(color=COLORS[system], marker=MARKERS[si % len(MARKERS)])
                ax.plot([p[0] for p in pts], [p[1] for p in pts],
                        linestyle=STYLES[si % len(STYLES)], linewidth=2, markersize=7,
                        label="%s, %s" % (NAMES[system], name), **style)
                floors = [p for p in pts if p[2]]
                if floors:  # open markers: lower bounds
                    ax.plot([p[0] for p in floors], [p[1] for p in floors], linestyle="none",
                            markerfacecolor="white", markersize=7, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted({c["n"] for c in cells})
        ax.set_xticks(sizes)
        ax.set_xticklabels([size_name(n) for n in sizes])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlim(sizes[0] / 1.3, sizes[-1] * 1.3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("n (points)")
        ax.set_ylabel(ylabel)
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: "{:,.0f}".format(v))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    # One legend for all four panels (the same lines in each), where it
    # hides no point.
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.935), ncol=2,
               fontsize=9, frameon=False)
    commit = report.get("git", {}).get("commit", "")[:10]
    host = report.get("host", {})
    fig.suptitle(
        "scale_bench: Quiver HNSW vs one hnswlib graph, M=%d, ef_construction=%d, k=%d, "
        "%d queries\n%s, %s cores, commit %s%s" % (
            cfg["M"], cfg["ef_construction"], cfg["k"], cfg["queries"], host.get("cpu", "?"),
            host.get("cores", "?"), commit,
            " (dirty)" if report.get("git", {}).get("dirty") else ""),
        fontsize=11)
    fig.text(0.5, 0.005,
             "QPS at recall 0.95: log-QPS interpolated between the swept ef values around it; "
             "open marker: the smallest swept ef already passed 0.95 (that ef's QPS, a lower bound)",
             ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 0.88))
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
