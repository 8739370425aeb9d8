"""Render a few dashboard panels as a PNG from one real /metrics scrape (no Grafana here).

    .venv/bin/python scripts/render_dashboard.py metrics.txt docs/dashboard.png

Bars of the scrape's values (counts since start, not time series: one scrape has no
history), laid out as the panels of docs/grafana-dashboard.json, shot with headless
Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import html
import subprocess
import sys
import tempfile
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

PANELS = (
    (
        "Ingest requests by source and result",
        "hookgate_ingest_requests_total",
        ("source", "result"),
    ),
    (
        "Verification failures by reason",
        "hookgate_ingest_verification_failures_total",
        ("source", "reason"),
    ),
    (
        "Delivery attempts by target and outcome",
        "hookgate_relay_attempts_total",
        ("target", "outcome"),
    ),
    ("Deliveries gone dead", "hookgate_relay_dead_total", ("target",)),
    ("Queue (from the database)", "hookgate_queue_deliveries", ("target", "state")),
    (
        "Successful deliveries (end-to-end count)",
        "hookgate_relay_end_to_end_seconds_count",
        ("target",),
    ),
)


def values(text: str) -> dict[str, list[tuple[str, float]]]:
    found: dict[str, list[tuple[str, float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for _, name, keys in PANELS:
                if sample.name == name:
                    label = " ".join(sample.labels.get(k, "") for k in keys)
                    found.setdefault(name, []).append((label, sample.value))
    return found


def panel(title: str, rows: list[tuple[str, float]]) -> str:
    top = max((v for _, v in rows), default=0) or 1
    bars = "".join(
        f'<text x="0" y="{22 * i + 15}">{html.escape(label)}</text>'
        f'<rect x="220" y="{22 * i + 3}" width="{300 * v / top:.1f}" height="16" fill="#3274d9"/>'
        f'<text x="{225 + 300 * v / top:.1f}" y="{22 * i + 15}">{v:g}</text>'
        for i, (label, v) in enumerate(rows)
    )
    height = 22 * max(len(rows), 1) + 6
    return (
        f'<div class="panel"><h2>{html.escape(title)}</h2>'
        f'<svg width="580" height="{height}">{bars}</svg></div>'
    )


def page(text: str) -> str:
    found = values(text)
    panels = "".join(panel(title, found.get(name, [])) for title, name, _ in PANELS)
    style = (
        "body{background:#111217;color:#ccccdc;font:13px sans-serif;margin:12px}"
        ".grid{display:grid;grid-template-columns:1fr 1fr;gap:10px}"
        ".panel{background:#181b1f;border:1px solid #2c3235;padding:8px}"
        "h1{font-size:16px}h2{font-size:13px;margin:0 0 6px}svg text{fill:#ccccdc;font-size:12px}"
    )
    title = "hookgate: one /metrics scrape of a real serve (rendered here, not by Grafana)"
    return f"<html><style>{style}</style><h1>{title}</h1><div class='grid'>{panels}</div></html>"


def main(source: str, target: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        page_file = Path(tmp) / "dashboard.html"
        page_file.write_text(page(Path(source).read_text()))
        subprocess.run(
            ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
             f"--screenshot={Path(target).resolve()}", "--window-size=1240,720",
             page_file.as_uri()],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
