"""``lightning-bohb export`` and ``plot``: a session's results as a CSV file or a self-contained HTML report.

Both read only the session's files (`lightning_bohb.session.history`): they work while the session
runs, after it paused, and on a copy of its folder; they import neither Ray nor torch. The report
inlines plotly's own bundled ``plotly.min.js`` (from the installed ``plotly`` package, the
``dashboard`` extra) and draws the same charts as the dashboard, with the same script.
"""

from __future__ import annotations

import html
import io
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from lightning_bohb.core.optimizer import BEST_CONFIG_FILE  # imports neither Ray nor torch
from lightning_bohb.exceptions import LightningTuneError, SessionError
from lightning_bohb.session.history import chart_data, epoch_table, metric_of, write_csv
from lightning_bohb.session.state import read_summary
from lightning_bohb.utils.files import atomic_write

ASSETS = Path(__file__).with_name("dashboard_assets")
_MARKER = re.compile(r"<!--LB:([A-Z]+)-->")


def session_folder(session_dir: str) -> Path:
    session = Path(session_dir).expanduser()
    if not session.is_dir():
        raise SessionError(f"Session not found: {session} is not a directory. List sessions with: lightning-bohb list")
    return session


def export_csv(session_dir: str, output: Optional[str]) -> int:
    """One row per trial and epoch (metrics, Tune's fields, ``config/<name>`` columns) as CSV."""
    session = session_folder(session_dir)
    columns, rows = epoch_table(session)
    buffer = io.StringIO()
    write_csv(columns, rows, buffer)
    if output in (None, "-"):
        sys.stdout.write(buffer.getvalue())
        return 0
    target = Path(str(output)).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, buffer.getvalue())
    trials = len({row["trial_id"] for row in rows})
    print(f"Wrote {len(rows)} rows ({trials} trial{'s' * (trials != 1)}) of {session} to {target}")
    return 0


def plotly_js() -> str:
    """plotly's bundled ``plotly.min.js`` (no CDN: the file ships inside the ``plotly`` package)."""
    try:
        import plotly
    except ImportError as err:
        raise LightningTuneError(
            f"Charts need plotly: pip install 'lightning-bohb[dashboard]' (ImportError: {err})"
        ) from err
    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


def asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def plot(session_dir: str, output: str) -> int:
    """Write the session's charts and trials table as one HTML file that needs nothing else."""
    session = session_folder(session_dir)
    summary = read_summary(session)
    data = chart_data(session, summary)
    page = render_report(session, summary, data, plotly_js())
    target = Path(output).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, page)
    print(f"Wrote the report of {session} ({len(data['trials'])} trials) to {target}")
    return 0


def render_report(session: Path, summary: Dict[str, Any], data: Dict[str, Any], plotly: str) -> str:
    metric, mode = metric_of(summary)
    title = str(summary.get("session_id") or session.name)
    meta = (
        f"Experiment {summary.get('experiment_name', '?')}; status {summary.get('status', '?')}; "
        f"started {summary.get('started_at', '?')}; updated {summary.get('updated_at', '?')}; "
        f"metric {metric or '?'} ({mode}); folder {session}"
    )
    parts = {
        "TITLE": html.escape(title),
        "META": html.escape(meta),
        "STYLE": asset("style.css"),
        "PLOTLY": plotly,
        "CHARTS": asset("charts.js"),
        "TABLE": trials_table(data),
        "BEST": html.escape(best_config_text(session, summary)),
        "DATA": script_json(data),
    }
    return _MARKER.sub(lambda match: parts.get(match.group(1), ""), asset("report.html"))


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    return json.dumps(value, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def trials_table(data: Dict[str, Any]) -> str:
    metric = data.get("metric") or ""
    rows: List[str] = []
    for trial in data["trials"]:
        config = ", ".join(f"{k}={_number(v)}" for k, v in (trial.get("config") or {}).items())
        status = str(trial["status"]) + (" (stopped early)" if trial.get("stopped_early") else "")
        status += " (on request)" if trial.get("held") else ""
        cells = [trial["id"], status, trial["epochs"], _number(trial.get("last")), _number(trial.get("best")), config]
        rows.append(
            "<tr>"
            + "".join(
                f'<td class="{"num" if i in (2, 3, 4) else ("status-" + html.escape(str(trial["status"])) if i == 1 else "")}">'
                f"{html.escape(str(cell))}</td>"
                for i, cell in enumerate(cells)
            )
            + "</tr>"
        )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ("trial", "status", "epochs", f"last {metric}", f"best {metric}", "config"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def best_config_text(session: Path, summary: Dict[str, Any]) -> str:
    """The complete best config (``best_config.yaml``, written when the search completes), else the
    best trial's sampled values so far from the summary."""
    import yaml

    path = session / BEST_CONFIG_FILE
    if path.is_file() and not path.is_symlink():
        try:
            return path.read_text(encoding="utf-8")[:1_000_000]
        except (OSError, UnicodeDecodeError):
            pass
    best = summary.get("best")
    if not isinstance(best, dict):
        return "# No trial has reported yet."
    metric, _ = metric_of(summary)
    head = (
        f"# Best so far: trial {best.get('trial')}, {metric}={best.get(metric)}\n"
        "# (sampled values; the complete config is written when the search completes)\n"
    )
    return head + yaml.safe_dump(best.get("config") or {}, sort_keys=False)


def _number(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
