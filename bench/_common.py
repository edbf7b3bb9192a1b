"""Shared helpers of the benchmarks: paths, subprocess environment, process-tree memory, records, tables.

Nothing here imports torch, Lightning or Ray, so the parent process of a benchmark stays small and
does not share warm state with the runs it measures.
"""

from __future__ import annotations

import glob
import json
import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
EXAMPLES = REPO / "examples"
EXAMPLE_SCRIPT = EXAMPLES / "optimize.py"
RESUME_HEADER = "To resume this EXACT session with all settings, run:"

# The example's search space (examples/optimize.py DigitsSearchSpace), sampled here without Ray.
LR_RANGE = (1e-4, 3e-2)
HIDDEN_SIZES = (16, 32, 64, 128)
NUM_LAYERS = (1, 2, 3)
BATCH_SIZES = (32, 64, 128)


def bench_env(**extra: str) -> Dict[str, str]:
    """Environment of every measured subprocess: bench/ and examples/ importable, unbuffered output."""
    env = dict(os.environ)
    paths = [str(BENCH), str(EXAMPLES), env.get("PYTHONPATH", "")]
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in paths if p),
        PYTHONUNBUFFERED="1",
        RAY_DEDUP_LOGS="0",
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONWARNINGS="ignore",
    )
    env.pop("RAY_ADDRESS", None)  # never join someone else's cluster
    env.update(extra)
    return env


def sample_configs(n: int, seed: int) -> List[dict]:
    """``n`` configs drawn from the example's search space with a seeded RNG (same for every variant)."""
    import random

    rng = random.Random(seed)
    lo, hi = math.log(LR_RANGE[0]), math.log(LR_RANGE[1])
    return [
        {
            "lr": math.exp(rng.uniform(lo, hi)),
            "hidden_size": rng.choice(HIDDEN_SIZES),
            "num_layers": rng.choice(NUM_LAYERS),
            "batch_size": rng.choice(BATCH_SIZES),
        }
        for _ in range(n)
    ]


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants every ``interval`` seconds.

    RSS counts shared pages (torch's libraries, Ray's shared memory) once per process, so the sum
    over-states real use; it is the same measure for every variant.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> Optional[int]:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        if total > self.peak:
            self.peak = total
            self.peak_processes = len(procs)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.sample() is None:
                return
            self._stop.wait(self.interval)

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20


def read_jsonl(path) -> List[dict]:
    """The complete JSON lines of ``path`` (a line still being written is skipped)."""
    rows = []
    for line in open(path):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # blank, or being written right now
            pass
    return rows


def read_records(record_dir: Path) -> Dict[str, List[dict]]:
    """``{trial: [event, ...]}`` written by `bench_models.TimedDigitsClassifier`, in time order."""
    return {
        Path(path).stem: sorted(read_jsonl(path), key=lambda r: r["t"])
        for path in glob.glob(str(Path(record_dir) / "*.jsonl"))
    }


def read_results(tune_dir: Path) -> Dict[str, List[dict]]:
    """``{trial dir name: [result row, ...]}`` from every result.json under ``tune_dir``."""
    return {Path(path).parent.name: read_jsonl(path) for path in glob.glob(str(Path(tune_dir) / "*" / "result.json"))}


def print_header(title: str, root: Path, workdir_given: bool) -> None:
    """The first lines of a benchmark's output: what runs, the load, and where its files are."""
    print(title)
    print(f"# {load_average()}; files in {root}" + ("" if workdir_given else " (deleted at the end)"))
    busy = busy_others()
    if busy:
        print("# other busy processes right now (absolute times are inflated):\n#   " + "\n#   ".join(busy))


def count_result_rows(tune_dir: Path) -> int:
    total = 0
    for path in glob.glob(str(Path(tune_dir) / "*" / "result.json")):
        try:
            with open(path, "rb") as handle:
                total += sum(1 for line in handle if line.strip())
        except OSError:
            pass
    return total


def median(values: Iterable[float]) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else float("nan")


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence], out=sys.stdout) -> None:
    cells = [[str(h) for h in headers]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    print("\n".join(lines), file=out, flush=True)


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"
    except OSError:
        return f"{os.cpu_count()} CPUs"


def busy_others(own_pids: Iterable[int] = ()) -> List[str]:
    """Other processes using noticeable CPU right now (the benchmark shares the machine with them)."""
    own = set(own_pids) | {os.getpid()}
    procs = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            if proc.pid in own:
                continue
            proc.cpu_percent(None)
            procs.append(proc)
        except psutil.Error:
            pass
    time.sleep(0.5)
    busy = []
    for proc in procs:
        try:
            cpu = proc.cpu_percent(None)
            if cpu >= 20:
                cmd = " ".join(proc.info["cmdline"] or [proc.info["name"] or "?"])[:90]
                busy.append(f"{cpu:5.0f}% {proc.pid} {cmd}")
        except psutil.Error:
            pass
    return busy
