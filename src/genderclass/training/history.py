"""A run's ``metrics.csv`` across interrupted and resumed attempts.

Lightning's CSV logger deletes an existing ``metrics.csv`` when a run starts again, so before a
resumed attempt the earlier rows move to ``metrics.previous.csv`` and come back in front of the new
attempt's rows when it ends, however it ends. An attempt killed outright leaves the stash behind;
the next resume merges it first (an export copies the merged rows), so no attempt's rows are lost.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

METRICS_FILE = "metrics.csv"
STASH_FILE = "metrics.previous.csv"


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _merge(previous: list[dict[str, str]], path: Path) -> None:
    """Write ``previous`` rows logged before the attempt in ``path`` began, then that attempt's rows."""
    current = _read_rows(path)
    resumed_at = min((int(r["step"]) for r in current if r.get("step")), default=None)
    # a resumed attempt repeats the steps after the last checkpoint: its rows replace those
    kept = [r for r in previous if resumed_at is None or not r.get("step") or int(r["step"]) < resumed_at]
    fields = list(dict.fromkeys(key for row in kept + current for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept + current)


def stash_metrics(run_dir: Path) -> None:
    """Before a resumed attempt: move the history so far (every earlier attempt) aside."""
    stash, current = run_dir / STASH_FILE, run_dir / METRICS_FILE
    if stash.exists():  # an earlier attempt ended before its rows were merged back
        _merge(_read_rows(stash), current)
    if current.exists():
        current.replace(stash)


def restore_metrics(run_dir: Path) -> None:
    """After an attempt, finished or interrupted: the stashed history goes back in front of its rows."""
    stash = run_dir / STASH_FILE
    if stash.exists():
        _merge(_read_rows(stash), run_dir / METRICS_FILE)
        stash.unlink()


def copy_metrics(run_dir: Path, dest: Path) -> bool:
    """Copy the run's whole history to ``dest``, earlier attempts still stashed included (an attempt
    killed outright); the run folder itself is not changed. False if the run logged nothing."""
    current, stash = run_dir / METRICS_FILE, run_dir / STASH_FILE
    if not current.exists() and not stash.exists():
        return False
    if current.exists():
        shutil.copy(current, dest)
    else:
        dest.unlink(missing_ok=True)
    if stash.exists():
        _merge(_read_rows(stash), dest)
    return True
