"""Per-rank cost of the combine's SQL and of the load, for the code on PYTHONPATH.

For each log: load it into a rank database (best of --repeat, CPU ms of this process), then
time `SELECT * FROM view` for each of combine.PER_RANK_VIEWS on that database (best of
--repeat). Prints the median over the logs. Run it once with each tree on PYTHONPATH to
compare two versions on the same logs, e.g.

    PYTHONPATH=/work/main python bench/rank_views.py /work/bench-data/r16/*.log
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from tldb.combine import PER_RANK_VIEWS
from tldb.loader import build_database


def _best(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"load": []}
    with tempfile.TemporaryDirectory(prefix="tldb-rank-views-") as folder:
        for index, log in enumerate(args.logs):
            target = Path(folder) / f"{index}.db"
            figures["load"].append(
                _best(
                    args.repeat,
                    lambda log=log, target=target: build_database([log], target, pipelined=False),
                )
            )
            conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            for view in PER_RANK_VIEWS:
                query = f"SELECT * FROM {view}"
                figures.setdefault(view, []).append(
                    _best(args.repeat, lambda q=query, c=conn: c.execute(q).fetchall())
                )
            conn.close()
    print(f"{len(args.logs)} logs, median of per-log best-of-{args.repeat} CPU ms:")
    for name, values in figures.items():
        print(f"  {name:16s} {statistics.median(values):8.2f}")
    views = sum(statistics.median(figures[v]) for v in PER_RANK_VIEWS)
    print(f"  {'all views':16s} {views:8.2f}")


if __name__ == "__main__":
    main()
