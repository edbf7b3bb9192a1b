"""How every output of the package writes a number, a duration, a config, a trial's outcome, text
from a session's files and a table.

One rule for numbers, here and in the charts' script (``dashboard_assets/charts.js``, ``fmt``, which
a unit test checks against `number`): 4 significant digits; scientific notation below 1e-3 and from
1e4 on, written ``1.099e-4`` (no ``+``, no leading zeros in the exponent); a tie rounds away from
zero (as JavaScript's ``toPrecision`` does). The live table, the progress lines, ``status``, ``list``,
the dashboard and the report all show ``lr`` as the same text.

Epochs are numbered as Lightning numbers them (``current_epoch``, from 0) wherever an epoch is
named (charts, progress lines, the CSV's ``epoch`` column); "N epochs" is a count.
"""

from __future__ import annotations

import datetime
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Dict, List, Mapping

# One colour per trial outcome (`lightning_bohb.session.history.trial_outcome`), for the terminal table,
# the dashboard and the report.
OUTCOME_COLORS: Dict[str, str] = {
    "running": "#1f77b4",
    "finished": "#2ca02c",
    "stopped early": "#9467bd",
    "paused on request": "#ff7f0e",
    "waiting for its bracket": "#bcbd22",
    "paused": "#e6a100",
    "failed": "#d62728",
    "pending": "#7f7f7f",
}


def number(value: Any) -> str:
    """``value`` as the package writes numbers (see the module's doc); ``""`` for None; other values as `str`."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    try:
        as_float = float(value)
    except OverflowError:  # an int too large for a float
        return str(value)
    if math.isnan(as_float):
        return "nan"
    if math.isinf(as_float):
        return "inf" if as_float > 0 else "-inf"
    if as_float == 0:
        return "0"
    exact = Decimal(as_float)
    rounded = exact.quantize(Decimal(1).scaleb(exact.adjusted() - 3), rounding=ROUND_HALF_UP)
    if abs(as_float) >= 1e4 or abs(as_float) < 1e-3:
        exponent = rounded.adjusted()
        return f"{format(rounded.scaleb(-exponent).normalize(), 'f')}e{exponent}"
    return format(rounded.normalize(), "f")


def assignments(mapping: Mapping[str, Any]) -> str:
    """``name=value, ...`` with `number` for the values."""
    return ", ".join(f"{key}={number(value)}" for key, value in mapping.items())


def plural(count: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {word}{'s' * (count != 1)}"


def duration(seconds: Any) -> str:
    """``H:MM:SS`` (``D days, H:MM:SS`` past a day); ``""`` for a value that is no finite number."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return ""
    return str(datetime.timedelta(seconds=int(max(0.0, seconds))))


_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ONE_LINE = {code: None for code in _CONTROLS} | {ord("\n"): " ", ord("\t"): " ", ord("\r"): " "}
_LINES = {code: None for code in _CONTROLS if code not in (ord("\n"), ord("\t"))}


def printable(value: Any, keep_newlines: bool = False) -> str:
    """``value`` as text without control characters (ESC, BEL, C1 codes, bidi overrides), so that what
    a session file holds cannot drive the terminal; line breaks become spaces unless ``keep_newlines``."""
    return str(value).translate(_LINES if keep_newlines else _ONE_LINE)


def one_line(text: Any, limit: int = 160) -> str:
    """``text`` on one line, whitespace collapsed, cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_table(headers: List[str], rows: List[List[Any]]) -> None:
    """A plain table with `rich`: one line per row when stdout is not a terminal."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    terminal = console.is_terminal
    if not terminal:
        console = Console(highlight=False, width=100_000)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in headers:
        table.add_column(Text(printable(header)), no_wrap=not terminal)
    for row in rows:
        table.add_row(*(Text("" if cell is None else printable(cell)) for cell in row))
    if terminal:
        console.print(table)
        return
    with console.capture() as captured:
        console.print(table)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))
