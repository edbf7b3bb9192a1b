"""``lightning-bohb export`` and ``plot``: a session's results as a CSV file or a self-contained HTML report.

Both read only the session's files (`lightning_bohb.session.history`): they work while the session
runs, after it paused, and on a copy of its folder; they import neither Ray nor torch. The report
inlines plotly's own bundled ``plotly.min.js`` (from the installed ``plotly`` package, the
``dashboard`` extra) and draws the same table and charts as the dashboard, with the same script:
learning curves, epochs per trial, parallel coordinates, hyperparameter importance
(`lightning_bohb.session.importance`) and each hyperparameter against the metric.

Both files are meant to be shared: they get the permissions of the user's umask (as a file the
shell writes), not the private 0600 of the session's own files.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from lightning_bohb.cli.format import OUTCOME_COLORS, number, plural
from lightning_bohb.exceptions import LightningTuneError, SessionError
from lightning_bohb.session.history import SessionHistory, chart_data, epoch_table, metric_of, write_csv
from lightning_bohb.session.importance import param_importance
from lightning_bohb.session.state import read_summary
from lightning_bohb.utils.files import atomic_write
from lightning_bohb.utils.layout import BEST_CONFIG_FILE

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
    write_shared(target, buffer.getvalue())
    trials = len({row["trial_id"] for row in rows})
    print(f"Wrote {len(rows)} rows ({plural(trials, 'trial')}) of {session} to {target}")
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
    data = report_data(session, summary)
    page = render_report(session, summary, data, plotly_js())
    target = Path(output).expanduser()
    write_shared(target, page)
    print(f"Wrote the report of {session} ({len(data['trials'])} trials) to {target}")
    return 0


def write_shared(target: Path, text: str) -> None:
    """Write a file meant to be shared (atomically), with the permissions the user's umask gives a new file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, text)
    os.chmod(target, 0o666 & ~_umask())


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)  # elsewhere: set and restore (the commands are single-threaded here)
    os.umask(mask)
    return mask


def report_data(session: Path, summary: Dict[str, Any], history: Optional[SessionHistory] = None,
                importance: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None) -> Dict[str, Any]:
    """What the report and the dashboard draw: `chart_data`, the outcome colours and the hyperparameter importance
    (``importance``: computes it from the chart data; default `param_importance`, uncached)."""
    data = chart_data(session, summary, history)
    data["colors"] = OUTCOME_COLORS
    data["importance"] = (importance or _importance)(data)
    return data


def _importance(data: Dict[str, Any]) -> Dict[str, Any]:
    return param_importance(data["trials"], data["mode"], data.get("searched") or None)


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
        "BESTLINE": html.escape(best_line(data)),
        "METRIC": html.escape(metric or ""),
        "STYLE": asset("style.css"),
        "PLOTLY": plotly,
        "CHARTS": asset("charts.js"),
        "SEARCHED": html.escape(searched_text(data)),
        "BEST": html.escape(best_config_text(session, summary)),
        "DATA": script_json(data),
    }
    return _MARKER.sub(lambda match: parts.get(match.group(1), ""), asset("report.html"))


def best_line(data: Dict[str, Any]) -> str:
    best = data.get("best")
    if not best:
        return "No trial has reported yet."
    return f"\u2605 Best so far: trial {best['trial']}, {data.get('metric')}={number(best['value'])}"


def searched_text(data: Dict[str, Any]) -> str:
    """The best trial's searched values, one ``name: value`` a line (shown before the complete config)."""
    best = data.get("best")
    if not best:
        return "# No trial has reported yet."
    config = best.get("config") or {}
    searched = [name for name in data.get("searched") or [] if name in config]
    order = searched + [name for name in config if name not in searched]
    lines = [f"# The searched values of the best trial ({best['trial']}, {data.get('metric')}={number(best['value'])}):"]
    return "\n".join(lines + [f"{name}: {number(config[name])}" for name in order])


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    return json.dumps(value, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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
