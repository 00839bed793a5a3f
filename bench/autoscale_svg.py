"""Renders bench/autoscale.sh's CSV as an SVG chart, written by hand:
offered load (req/s) and p95 latency (ms) on the left axis scale of each
panel, instances on a step line below.

usage: autoscale_svg.py CSV SVG"""
import csv
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
W, H, L, R, T = 900, 560, 70, 30, 40
PW = W - L - R
secs = [int(r["second"]) for r in rows]
xmax = max(secs) if secs else 1


def x(s):
    return L + PW * s / xmax


def panel(top, height, series, ymax, unit, title):
    out = ['<text x="%d" y="%d" class="t">%s</text>' % (L, top - 8, title)]
    out.append('<rect x="%d" y="%d" width="%d" height="%d" class="box"/>' % (L, top, PW, height))
    for k in range(5):
        v = ymax * k / 4
        y = top + height - height * k / 4
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>' % (L, L + PW, y, y))
        out.append('<text x="%d" y="%.1f" class="ax" text-anchor="end">%g%s</text>'
                   % (L - 6, y + 4, round(v) if ymax > 20 else round(v, 1), unit))
    for name, key, cls, step in series:
        pts = []
        prev = None
        for r in rows:
            if r[key] == "":
                continue
            v = float(r[key])
            px, py = x(int(r["second"])), top + height - height * min(v, ymax) / ymax
            if step and prev is not None:
                pts.append("%.1f,%.1f" % (px, prev))
            pts.append("%.1f,%.1f" % (px, py))
            prev = py
        out.append('<polyline points="%s" class="%s"/>' % (" ".join(pts), cls))
    lx = L + 10
    for name, key, cls, step in series:
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" class="%s"/>' % (lx, lx + 18, top + 14,
                                                                          top + 14, cls))
        out.append('<text x="%d" y="%d" class="ax">%s</text>' % (lx + 22, top + 18, name))
        lx += 30 + 8 * len(name)
    return out


def top_of(key):
    vals = [float(r[key]) for r in rows if r[key] != ""]
    return max(vals) if vals else 1


rps_max = max(top_of("offered_rps"), top_of("answered_ok")) * 1.1
p95_max = top_of("p95_ms") * 1.1
inst_max = max(top_of("instances"), top_of("ready")) + 1
svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">'
       % (W, H, W, H),
       '<style>.t{font:bold 13px sans-serif}.ax{font:11px sans-serif;fill:#444}'
       '.box{fill:none;stroke:#999}.grid{stroke:#eee}polyline{fill:none;stroke-width:1.8}'
       '.off{stroke:#888;stroke-dasharray:4 3}.ok{stroke:#1f77b4}.p95{stroke:#d62728}'
       '.inst{stroke:#2ca02c}.ready{stroke:#9467bd;stroke-dasharray:3 2}</style>',
       '<rect width="100%" height="100%" fill="white"/>']
svg += panel(T, 150, [("offered req/s", "offered_rps", "off", False),
                      ("answered OK (by second sent)", "answered_ok", "ok", False)], rps_max, "",
             "load (per second)")
svg += panel(T + 190, 150, [("p95 latency", "p95_ms", "p95", False)], p95_max, " ms",
             "p95 latency of the requests sent in each second")
svg += panel(T + 380, 110, [("instances (counted)", "instances", "inst", True),
                            ("ready", "ready", "ready", True)], inst_max, "",
             "autoscaled instances")
for s in range(0, xmax + 1, 10):
    svg.append('<text x="%.1f" y="%d" class="ax" text-anchor="middle">%ds</text>'
               % (x(s), H - 12, s))
svg.append("</svg>")
open(sys.argv[2], "w").write("\n".join(svg) + "\n")
