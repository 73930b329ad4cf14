#!/usr/bin/env python
"""Benchmark Parquet and Dask against CSV on one machine (issue 17; not a test).

    python scripts/bench_scale.py                      # 10^7 rows: CSV → CSV, Parquet → Parquet, Dask 1 and 2 workers
    python scripts/bench_scale.py --rows 1e6 --workers 1,2,4

The same seeded points (x, y uniform in [-1.5, 1.5]) are written once as a CSV (shortest round-trip text) and as a
Parquet file with row groups of 2^20 rows (each a Dask partition), then d2f/dxdy of x^2 sin(y) + y^3 cos(x) is
computed with the exact side (4 output columns):

  csv → csv           `pdiff diff ... --points points.csv -f csv > out.csv` (a fresh process: imports included)
  parquet → parquet   `pdiff diff ... --points points.parquet --output out.parquet`
  dask N workers      pdiff.dask.derivatives over dd.read_parquet(points.parquet) → pdiff.dask.to_parquet(dir)
                      on a LocalCluster of N worker processes with one thread each (the cluster's start-up and the
                      workers' first imports are timed apart; the run is timed from a warm cluster)

"peak" is the peak RSS (VmHWM) of the CLI process, or of the largest worker. Every output is checked against the CSV run's
d2f/dxdy column (same floats, all rows). PDIFF_CPU_WORKERS is left as it is (pdiff's own threads per process).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPRESSION, PARTIAL = "x^2 sin(y) + y^3 cos(x)", "d2f/dxdy"
ROW_GROUP = 1 << 20


def _write_points(directory: str, rows: int) -> tuple[str, str]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    table = pa.table({"x": rng.uniform(-1.5, 1.5, rows), "y": rng.uniform(-1.5, 1.5, rows)})
    csv_path, parquet_path = os.path.join(directory, "points.csv"), os.path.join(directory, "points.parquet")
    pacsv.write_csv(table, csv_path, pacsv.WriteOptions(quoting_style="none"))
    pq.write_table(table, parquet_path, row_group_size=ROW_GROUP)
    return csv_path, parquet_path


_MEASURED = """
import atexit, os, runpy, sys

def _report():
    with open("/proc/self/status") as status, open(os.environ["PDIFF_BENCH_PEAK"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM")))

atexit.register(_report)
sys.argv = ["pdiff", *sys.argv[1:]]
runpy.run_module("pdiff", run_name="__main__")
"""


def _hwm_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that across fork and exec, so a child of a
    big process would report the parent's size."""
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmHWM"))) / 1024


def _cli(args: list[str], stdout) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, VmHWM of the pdiff process itself) of one `python -m pdiff` run."""
    with tempfile.NamedTemporaryFile("r", suffix=".peak") as peak:
        env = {**os.environ, "PDIFF_SERVER": "0", "PYTHONPATH": ROOT, "PDIFF_BENCH_PEAK": peak.name}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _MEASURED, *args], stdout=stdout, env=env, check=False)
        seconds = time.perf_counter() - start
        text = peak.read().strip()
    return seconds, int(text) / 1024 if text else float("nan")


def _dask(parquet_path: str, out: str, workers: int) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import pdiff.dask as pdask

    start = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=50)
    client = Client(cluster)
    client.run(lambda: __import__("pdiff.dask"))  # torch, SymPy, pyarrow on every worker
    warm = time.perf_counter() - start
    try:
        start = time.perf_counter()
        frame = dd.read_parquet(parquet_path, split_row_groups=True)
        result = pdask.derivatives(frame, EXPRESSION, [PARTIAL])
        summary = pdask.to_parquet(result, out)
        seconds = time.perf_counter() - start
        peak = max(client.run(_hwm_mb).values())
    finally:
        client.close()
        cluster.close(timeout=30)
    return {"seconds": seconds, "start": warm, "peak": peak, "partitions": frame.npartitions,
            "problems": summary.problems, "points": summary.points}


def _check(reference, got, what: str) -> None:
    import numpy as np

    if not np.array_equal(reference, got):
        raise SystemExit(f"{what}: the values differ from the CSV run's")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--keep", help="a directory to keep the files in (default: a temporary one)")
    options = parser.parse_args()
    rows = int(options.rows)
    import numpy as np
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    directory = options.keep or tempfile.mkdtemp(prefix="pdiff-scale-")
    os.makedirs(directory, exist_ok=True)
    start = time.perf_counter()
    csv_path, parquet_path = _write_points(directory, rows)
    print(f"{rows:,} rows: points.csv {os.path.getsize(csv_path) / 1e6:.0f} MB, points.parquet "
          f"{os.path.getsize(parquet_path) / 1e6:.0f} MB (written in {time.perf_counter() - start:.1f} s); "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    lines = []

    out_csv = os.path.join(directory, "out.csv")
    with open(out_csv, "wb") as sink:
        seconds, peak = _cli(["diff", EXPRESSION, PARTIAL, "--points", csv_path, "-f", "csv"], sink)
    lines.append(("csv → csv (stdout to a file)", seconds, peak, os.path.getsize(out_csv)))
    reference = pacsv.read_csv(out_csv, convert_options=pacsv.ConvertOptions(include_columns=[PARTIAL])
                               ).column(PARTIAL).to_numpy()

    out_parquet = os.path.join(directory, "out.parquet")
    seconds, peak = _cli(["diff", EXPRESSION, PARTIAL, "--points", parquet_path, "--output", out_parquet],
                         subprocess.DEVNULL)
    lines.append(("parquet → parquet (--output)", seconds, peak, os.path.getsize(out_parquet)))
    _check(reference, pq.read_table(out_parquet).column(PARTIAL).to_numpy(), "parquet → parquet")

    for workers in [int(w) for w in options.workers.split(",") if w]:
        out = os.path.join(directory, f"dask{workers}")
        found = _dask(parquet_path, out, workers)
        size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
        name = f"dask, {workers} worker{'s' if workers > 1 else ''} ({found['partitions']} partitions)"
        lines.append((name, found["seconds"], found["peak"], size, found["start"]))
        assert found["points"] == rows and not found["problems"], found
        _check(reference, pq.read_table(out).column(PARTIAL).to_numpy(), name)

    print(f"\n{'':36}{'wall':>9}{'rows/s':>12}{'peak':>10}{'output':>10}")
    for name, seconds, peak, size, *start in lines:
        extra = f"   (+{start[0]:.1f} s cluster start and worker imports)" if start else ""
        print(f"{name:36}{seconds:8.2f}s{rows / seconds / 1e6:9.2f} M/s{peak:7.0f} MB{size / 1e6:7.0f} MB{extra}")
    print("every output's d2f/dxdy column equals the CSV run's, all rows (np.array_equal)")
    del np


if __name__ == "__main__":
    main()
