"""Small inline SVG charts for the owners' page: no script, no CDN, readable on a phone.

Colours are presentation attributes, not `style`, so a strict Content-Security-Policy holds.
"""

from __future__ import annotations

from html import escape
from typing import Sequence

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2")
W, H, PAD = 600, 180, 28


def _frame(title: str, body: str, legend: Sequence[tuple[str, str]] = ()) -> str:
    keys = "".join(f'<span class="key"><svg width="10" height="10" aria-hidden="true"><rect width="10" '
                   f'height="10" fill="{c}"/></svg> {escape(name)}</span>' for name, c in legend)
    return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
            f'<svg class="chart-svg" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
            f'preserveAspectRatio="none">{body}</svg><div class="legend">{keys}</div></figure>')


def _axis(labels: Sequence[str], top: float, fmt: str = "{:.0f}") -> str:
    out = [f'<line x1="{PAD}" y1="{H - PAD}" x2="{W}" y2="{H - PAD}" stroke="#999"/>',
           f'<text x="2" y="{PAD - 4}" font-size="11" fill="#555">{escape(fmt.format(top))}</text>']
    if labels:
        step = max(1, len(labels) // 6)
        width = (W - PAD) / len(labels)
        for i in range(0, len(labels), step):
            out.append(f'<text x="{PAD + i * width + 2:.1f}" y="{H - 8}" font-size="10" fill="#555">'
                       f'{escape(labels[i][5:])}</text>')
    return "".join(out)


def stacked_bars(title: str, labels: Sequence[str], series: dict[str, Sequence[int]]) -> str:
    """One bar per label, stacked by series (e.g. questions per day by platform)."""
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    width = (W - PAD) / max(len(labels), 1)
    bars = []
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(series))}
    for i in range(len(labels)):
        y = H - PAD
        for name in sorted(series):
            v = series[name][i]
            if not v:
                continue
            h = v / top * (H - 2 * PAD)
            y -= h
            bars.append(f'<rect class="bar" x="{PAD + i * width + 1:.1f}" y="{y:.1f}" width="{max(width - 2, 1):.1f}" '
                        f'height="{h:.1f}" fill="{colours[name]}"><title>{escape(labels[i])} {escape(name)}: '
                        f'{v}</title></rect>')
    return _frame(title, _axis(labels, top) + "".join(bars), [(n, colours[n]) for n in sorted(series)])


def share_line(title: str, labels: Sequence[str], shares: Sequence[float]) -> str:
    """A line of shares in [0, 1] (e.g. the covered share per day)."""
    width = (W - PAD) / max(len(labels), 1)
    pts = [(PAD + (i + 0.5) * width, H - PAD - s * (H - 2 * PAD)) for i, s in enumerate(shares)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    dots = "".join(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[1]}"><title>'
                   f'{escape(labels[i])}: {shares[i]:.0%}</title></circle>' for i, (x, y) in enumerate(pts))
    body = _axis(labels, 100, "{:.0f}%") + (f'<polyline points="{line}" fill="none" stroke="{PALETTE[1]}" '
                                            f'stroke-width="2"/>' if pts else "") + dots
    return _frame(title, body)


def paired_bars(title: str, labels: Sequence[str], a: Sequence[int], b: Sequence[int],
                names: tuple[str, str]) -> str:
    """Two bars per label side by side (e.g. 👍 and 👎 per week)."""
    top = max([*a, *b], default=0) or 1
    width = (W - PAD) / max(len(labels), 1)
    bars = []
    for i in range(len(labels)):
        for j, (v, colour) in enumerate(((a[i], PALETTE[1]), (b[i], PALETTE[4]))):
            h = v / top * (H - 2 * PAD)
            bars.append(f'<rect class="bar" x="{PAD + i * width + 1 + j * width / 2:.1f}" y="{H - PAD - h:.1f}" '
                        f'width="{max(width / 2 - 2, 1):.1f}" height="{h:.1f}" fill="{colour}"><title>'
                        f'{escape(labels[i])} {escape(names[j])}: {v}</title></rect>')
    return _frame(title, _axis(labels, top) + "".join(bars), [(names[0], PALETTE[1]), (names[1], PALETTE[4])])
