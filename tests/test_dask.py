"""pdiff.dask on a LocalCluster of 2 worker processes: every output value equal to the single-machine stream on the
same rows, the summary reduced across partitions equal to the stream's, a worker killed mid-run retried by Dask with
the same complete result, the plan pickled and rebuilt, and `--dask SCHEDULER` over a Parquet dataset."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

import pdiff.dask as pdask
from pdiff import sources, stream
from pdiff.cli import app

EXPRESSION = "x^2 sin(y) + y^3 cos(x) + abs(x - y)"
PARTIALS = ["d2f/dxdy", "f_x"]
ROWS, PARTITIONS = 4000, 4


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=50)
    client = Client(cluster)
    client.run(lambda: __import__("pdiff.stream"))  # torch and SymPy on both workers while the tests set up
    yield client
    client.close()
    cluster.close(timeout=20)


@pytest.fixture(scope="module")
def points() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x": rng.uniform(-2, 2, ROWS), "y": rng.uniform(-2, 2, ROWS),
                          "tag": [f"p{i}" for i in range(ROWS)]})
    frame.loc[[5, 1500, 3999], "y"] = frame.loc[[5, 1500, 3999], "x"]  # on the kink of |x - y|, in 3 partitions
    frame.loc[2222, "x"] = 0.0  # and x = 0 exactly
    return frame


def _single(points: pd.DataFrame, command: str = "diff"):
    """The single-machine stream on the same rows: the plan's own ChunkValues, and its summary."""
    if command == "diff":
        plan = stream.plan_diff(EXPRESSION, PARTIALS, names=["x", "y", "tag"])
    else:
        plan = stream.plan_matrix(command, EXPRESSION, names=["x", "y", "tag"])
    source = sources.array_source({"x": points["x"].to_numpy(), "y": points["y"].to_numpy()}, plan.needed)
    return plan, list(plan.run(source))


def _assert_same_columns(table: pd.DataFrame, plan, chunks) -> None:
    """Every computed value of the distributed table equals the stream's, bit for bit (nan where it has nan)."""
    from pdiff import arrow

    expected = {}
    for values in chunks:
        for (name, _), array in zip(arrow.output_types(plan), arrow.computed_arrays(plan, values)):
            expected.setdefault(name, []).append(array)
    assert list(table.columns[3:]) == list(expected)
    for name, arrays in expected.items():
        want = pa.chunked_array(arrays).to_pylist()
        got = [None if v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v for v in table[name].tolist()]
        want = [None if isinstance(v, float) and np.isnan(v) else v for v in want]
        assert got == want, name


def _assert_same_summary(reduced, single) -> None:
    assert reduced.points == single.points == ROWS and reduced.finished and single.finished
    for got, want in zip(reduced.targets, single.targets):
        for field in ("points", "non_finite", "disagree", "not_differentiable", "kink_unexamined", "max_abs_diff",
                      "max_rel_diff", "derivative", "exact"):
            assert getattr(got, field) == getattr(want, field), (got.target.label, field)
        # where: `partition N row M` against the stream's `arrays row K`, the same row
        if want.max_abs_at:
            number, row = got.max_abs_at.split()[1], int(got.max_abs_at.split()[3])
            assert int(want.max_abs_at.split()[2]) == int(number) * (ROWS // PARTITIONS) + row
    assert len(reduced.problems) == len(single.problems)
    assert reduced.exit_code == single.exit_code


def test_derivatives_on_two_workers_equal_the_single_machine_stream(client, points):
    frame = dd.from_pandas(points, npartitions=PARTITIONS, sort=False)
    result = pdask.derivatives(frame, EXPRESSION, PARTIALS)
    assert isinstance(result, dd.DataFrame) and list(result.columns[:3]) == ["x", "y", "tag"]
    table, reduced = pdask.compute(result)
    plan, chunks = _single(points)
    pd.testing.assert_frame_equal(table[["x", "y"]], points[["x", "y"]])
    assert table["tag"].tolist() == points["tag"].tolist()
    _assert_same_columns(table, plan, chunks)
    _assert_same_summary(reduced, plan.summary)
    assert reduced.targets[0].not_differentiable == 3  # the three kink rows, found in three partitions
    assert pdask.summary(result).targets[1].max_abs_diff == reduced.targets[1].max_abs_diff


def test_hessian_over_a_parquet_dataset_written_by_the_workers(client, points, tmp_path):
    pq.write_table(pa.Table.from_pandas(points, preserve_index=False), tmp_path / "points.parquet",
                   row_group_size=ROWS // PARTITIONS)
    frame = dd.read_parquet(str(tmp_path / "points.parquet"), split_row_groups=True)
    assert frame.npartitions == PARTITIONS
    reduced = pdask.to_parquet(pdask.hessian(frame, EXPRESSION), str(tmp_path / "out"))
    written = pq.read_table(str(tmp_path / "out")).replace_schema_metadata(None).to_pandas()
    # the single machine: `pdiff hessian --points FILE.parquet --output FILE.parquet`, the same columns
    result = CliRunner().invoke(app, ["hessian", EXPRESSION, "--points", str(tmp_path / "points.parquet"),
                                      "-o", str(tmp_path / "single.parquet")])
    assert result.exit_code == 1  # the kinks: no derivative there
    single = pq.read_table(tmp_path / "single.parquet").replace_schema_metadata(None).to_pandas()
    assert list(written.columns) == list(single.columns)
    pd.testing.assert_frame_equal(written.reset_index(drop=True), single, check_dtype=False)
    plan, _ = _single(points, "hessian")
    _assert_same_summary(reduced, plan.summary)


def test_a_worker_killed_mid_run_is_retried_and_the_result_is_the_same(client, points, tmp_path):
    marker = str(tmp_path / "killed")

    def die_once(part, partition_info=None):  # nested: cloudpickle ships it by value to the workers
        if partition_info and partition_info["number"] == 2 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies; its nanny starts another and Dask reruns what was lost
        return part

    frame = dd.from_pandas(points, npartitions=PARTITIONS, sort=False)
    frame = frame.map_partitions(die_once, meta=frame._meta)
    workers_before = set(client.scheduler_info()["workers"])
    table, reduced = pdask.compute(pdask.derivatives(frame, EXPRESSION, PARTIALS))
    assert os.path.exists(marker), "no worker was killed"
    assert set(client.scheduler_info()["workers"]) != workers_before  # a new worker process took its place
    plan, chunks = _single(points)
    assert len(table) == ROWS
    _assert_same_columns(table, plan, chunks)
    _assert_same_summary(reduced, plan.summary)


def test_the_cli_runs_a_parquet_dataset_on_the_cluster(client, points, tmp_path):
    (tmp_path / "data").mkdir()
    for i in range(2):
        part = points.iloc[i * 500:(i + 1) * 500]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), tmp_path / "data" / f"part.{i}.parquet")
    runner = CliRunner()
    args = ["diff", "x^2 sin(y)", "d2f/dxdy", "--points", str(tmp_path / "data")]
    result = runner.invoke(app, [*args, "--dask", client.cluster.scheduler_address, "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    single = runner.invoke(app, [*args, "-o", str(tmp_path / "single.parquet")])
    assert single.exit_code == 0, single.output
    got = pq.read_table(str(tmp_path / "out")).replace_schema_metadata(None).to_pandas()
    want = pq.read_table(tmp_path / "single.parquet").replace_schema_metadata(None).to_pandas()
    pd.testing.assert_frame_equal(got.reset_index(drop=True)[want.columns], want, check_dtype=False)
    result = runner.invoke(app, [*args, "--dask", client.cluster.scheduler_address])
    assert result.exit_code == 2 and "--output DIR" in result.stderr


def test_the_plan_pickles_and_is_rebuilt_with_the_same_values(points):
    plan = stream.plan_diff(EXPRESSION, PARTIALS, names=["x", "y"])
    shipped = pickle.loads(pickle.dumps(pdask.ShippedPlan(plan)))
    rebuilt = shipped.for_task()
    assert rebuilt is not plan and [t is not None for t in rebuilt.traced] == [t is not None for t in plan.traced]
    columns = {"x": points["x"].to_numpy()[:500], "y": points["y"].to_numpy()[:500]}
    for a, b in zip(plan.run(sources.array_source(columns, plan.needed)),
                    rebuilt.run(sources.array_source(columns, plan.needed))):
        for t in range(len(plan.targets)):
            np.testing.assert_array_equal(a.autograd[t], b.autograd[t])
            np.testing.assert_array_equal(a.exact[t], b.exact[t])


def test_frame_errors_are_the_file_errors(points):
    frame = dd.from_pandas(points.rename(columns={"y": "z"}), npartitions=2)
    with pytest.raises(Exception, match=r"no column for y \(columns: x, z, tag\)"):
        pdask.derivatives(frame, "x y", ["f_x"], var=["y"])
    bad = points.copy()
    bad.loc[1200, "y"] = np.nan
    frame = dd.from_pandas(bad, npartitions=PARTITIONS, sort=False)
    with pytest.raises(Exception, match=r"^partition 1 row 201: y = nan is not a finite number$"):
        pdask.compute(pdask.derivatives(frame, "x y", ["f_x"]), scheduler="synchronous")
    bad["y"] = pd.array([None, *map(float, range(1, ROWS))], dtype="Float64")  # pandas' nullable floats
    frame = dd.from_pandas(bad, npartitions=PARTITIONS, sort=False)
    with pytest.raises(Exception, match=r"^partition 0 row 1: y = null is not a number$"):
        pdask.compute(pdask.derivatives(frame, "x y", ["f_x"]), scheduler="synchronous")
    frame = dd.from_pandas(points.assign(y=points["tag"]), npartitions=2)
    with pytest.raises(Exception, match=r"^the frame: column y holds \w*string, not numbers$"):
        pdask.derivatives(frame, "x y", ["f_x"])
