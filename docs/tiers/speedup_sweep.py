#!/usr/bin/env python3
"""TPS of the tier rows against load: replays a trace at several speedups on one device with
odma-replay --json and writes a Markdown table and an SVG line chart (docs/tiers.md).

usage: docs/tiers/speedup_sweep.py REPLAY_BINARY DEVICE OUT_PREFIX [speedup ...] [-- replay args]

Example (the figures of docs/tiers.md):
  docs/tiers/speedup_sweep.py build/dev/tools/odma-replay gh200 docs/tiers/gh200 \\
      1 2 4 6 8 16 32 -- --trace data/mooncake_synthetic.jsonl \\
      --policies paged-16,odma,tier-static,tier-dynamic,tier-bound

The simulator is deterministic, so the output is the same on every run.
"""
import json
import math
import subprocess
import sys

COLORS = ["#999999", "#E69F00", "#D55E00", "#0072B2", "#009E73", "#CC79A7", "#56B4E9"]


def replay(binary, device, speedup, extra):
    cmd = [binary, "--device", device, "--speedup", str(speedup), "--json", "--no-progress"]
    out = subprocess.run(cmd + extra, check=True, capture_output=True, text=True).stdout
    return {r["policy"]: r for r in json.loads(out)["devices"][0]["results"]}


def svg(title, speedups, series, path):
    w, h, left, right, top, bottom = 640, 360, 64, 150, 36, 48
    pw, ph = w - left - right, h - top - bottom
    ymax = max(v for vals in series.values() for v in vals) * 1.1
    lx = [math.log2(s) for s in speedups]
    x = lambda s: left + pw * (math.log2(s) - lx[0]) / max(lx[-1] - lx[0], 1e-9)
    y = lambda v: top + ph * (1 - v / ymax)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>']
    for s in speedups:
        out.append(f'<text x="{x(s):.1f}" y="{top + ph + 16}" text-anchor="middle">{s}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 8}" text-anchor="middle">'
               'speedup of the recorded arrivals (log scale)</text>')
    step = 10 ** math.floor(math.log10(ymax / 4))
    step *= 5 if ymax / step > 20 else (2 if ymax / step > 10 else 1)
    v = 0.0
    while v <= ymax:
        out.append(f'<line x1="{left - 4}" y1="{y(v):.1f}" x2="{left + pw}" y2="{y(v):.1f}" '
                   'stroke="#eeeeee"/>')
        out.append(f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        v += step
    out.append(f'<text x="16" y="{top + ph / 2}" transform="rotate(-90 16 {top + ph / 2})" '
               'text-anchor="middle">output tokens per second</text>')
    for i, (name, vals) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        pts = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(speedups, vals))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        for s, v in zip(speedups, vals):
            out.append(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="3" fill="{c}"/>')
        ly = top + 12 + 18 * i
        out.append(f'<line x1="{left + pw + 12}" y1="{ly}" x2="{left + pw + 32}" y2="{ly}" '
                   f'stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{left + pw + 38}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main(argv):
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    if len(argv) < 4:
        sys.exit(__doc__)
    binary, device, prefix = argv[1:4]
    speedups = [float(s) if "." in s else int(s) for s in argv[4:]] or [1, 2, 4, 8, 16]
    runs = []
    for i, s in enumerate(speedups):
        print(f"  speedup {s} ({i + 1}/{len(speedups)})", file=sys.stderr, flush=True)
        runs.append(replay(binary, device, s, extra))
    policies = list(runs[0].keys())
    series = {p: [r[p]["TPS"] for r in runs] for p in policies}
    svg(f"TPS against load - {device}", speedups, series, prefix + "-speedup.svg")
    lines = ["| speedup | " + " | ".join(policies) + " |",
             "|---:|" + "---:|" * len(policies)]
    for s, r in zip(speedups, runs):
        lines.append(f"| {s} | " + " | ".join(f"{r[p]['TPS']:,.0f}" for p in policies) + " |")
    with open(prefix + "-speedup.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv)
