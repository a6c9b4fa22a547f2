#!/usr/bin/env python3
"""Draws docs/performance.svg from docs/performance.csv, with the standard library only.

The CSV holds figures copied from `make bench` runs, one row per measurement:

    panel,label,value,baseline_label,baseline_value,unit

Each panel becomes one block of horizontal bar pairs: our figure (dark) above the baseline the
bench measured in the same run (light), both on the panel's own linear scale, with the ratio
written at the end of the pair. A row without a baseline draws one bar. Units say which way is
better: "tasks/s" and "lookups/s" higher, "ns" lower; the ratio is always ours / baseline.

    python3 bench/plot.py                  # rewrite docs/performance.svg
    python3 bench/plot.py --check          # exit 1 if the SVG is not what the CSV gives
"""
import argparse
import csv
import html
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSV_PATH = os.path.join(ROOT, "docs", "performance.csv")
SVG_PATH = os.path.join(ROOT, "docs", "performance.svg")

WIDTH = 1000
LABEL_W = 300
BAR_MAX = 400
BAR_H = 13
PAIR_GAP = 10
PANEL_GAP = 34
OURS = "#1f4e79"
BASE = "#9dc3e6"


def read_rows(path):
    panels = []
    with open(path, newline="") as f:
        for row in csv.DictReader(row for row in f if not row.startswith("#")):
            row["value"] = float(row["value"])
            row["baseline_value"] = float(row["baseline_value"]) if row["baseline_value"] else None
            if not panels or panels[-1][0] != row["panel"]:
                panels.append((row["panel"], []))
            panels[-1][1].append(row)
    return panels


def fmt(v, unit):
    if v >= 1e6:
        s = "%.2fM" % (v / 1e6)
    elif v >= 1e4:
        s = "%.0fk" % (v / 1e3)
    elif v >= 100:
        s = "%.0f" % v
    elif v >= 1:
        s = "%.1f" % v
    else:
        s = "%.2g" % v
    return "%s %s" % (s, unit)


def render(panels):
    out = []
    y = 40
    body = []
    for title, rows in panels:
        body.append('<text x="10" y="%d" class="panel">%s</text>' % (y, html.escape(title)))
        y += 12
        top = max(max(r["value"], r["baseline_value"] or 0) for r in rows)
        for r in rows:
            bars = [(r["value"], OURS, r["label"])]
            if r["baseline_value"] is not None:
                bars.append((r["baseline_value"], BASE, r["baseline_label"]))
            for i, (v, color, label) in enumerate(bars):
                w = max(1.0, BAR_MAX * v / top)
                body.append('<text x="%d" y="%d" class="%s">%s</text>' %
                            (LABEL_W - 8, y + BAR_H - 3, "label" if i == 0 else "base",
                             html.escape(label)))
                body.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' %
                            (LABEL_W, y, w, BAR_H, color))
                text = fmt(v, r["unit"])
                if i == 1:
                    text += "   (ours / baseline: %.2fx)" % (r["value"] / v)
                body.append('<text x="%.1f" y="%d" class="value">%s</text>' %
                            (LABEL_W + w + 6, y + BAR_H - 3, html.escape(text)))
                y += BAR_H + 2
            y += PAIR_GAP
        y += PANEL_GAP - PAIR_GAP
    height = y
    out.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
               'viewBox="0 0 %d %d" font-family="sans-serif">' % (WIDTH, height, WIDTH, height))
    out.append("<style>.title{font-size:15px;font-weight:bold}.panel{font-size:13px;"
               "font-weight:bold}.label{font-size:11px;text-anchor:end}.base{font-size:11px;"
               "text-anchor:end;fill:#555}.value{font-size:11px}</style>")
    out.append('<rect width="100%" height="100%" fill="white"/>')
    out.append('<text x="10" y="20" class="title">plugin-persistence: each figure beside the '
               'baseline measured in the same run (docs/performance.md)</text>')
    out.extend(body)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the SVG is out of date")
    args = ap.parse_args()
    svg = render(read_rows(CSV_PATH))
    if args.check:
        with open(SVG_PATH) as f:
            if f.read() != svg:
                print("FAIL docs/performance.svg is not what docs/performance.csv gives; run "
                      "python3 bench/plot.py")
                print("plot: 0 passed, 1 failed")
                return 1
        print("ok docs/performance.svg matches docs/performance.csv")
        print("plot: 1 passed, 0 failed")
        return 0
    with open(SVG_PATH, "w") as f:
        f.write(svg)
    print("wrote %s" % os.path.relpath(SVG_PATH, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
