"""`pdiff plot`: the data (pdiff.plot) and the files drawn from it (pdiff.render.plot), read back."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from typer.testing import CliRunner

from pdiff import plot
from pdiff.cli import app
from pdiff.errors import InputError

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def colours(path) -> int:
    with Image.open(path) as image:
        return len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0))


@pytest.fixture(scope="module")
def cubic():
    return plot.plot("x^3 - 3x", ranges="x=-3:3")


def test_cubic_data_has_f_and_two_derivatives(cubic):
    assert [c.label for c in cubic.curves] == ["f", "df/dx", "d2f/dx2"]
    assert cubic.note == "float64 on cpu" and cubic.variable == "x"
    fprime = cubic.curves[1].y
    np.testing.assert_allclose(fprime, 3 * cubic.x ** 2 - 3, atol=1e-12)
    crossings = cubic.x[:-1][np.diff(np.sign(fprime)) != 0]  # f' changes sign between x[i] and x[i+1]
    np.testing.assert_allclose(crossings, [-1, 1], atol=2 * (cubic.x[1] - cubic.x[0]))


def test_the_png_has_the_derivative_crossing_zero_at_plus_minus_one(cubic, tmp_path):
    from matplotlib.colors import to_rgb

    from pdiff.render import plot as render

    path = tmp_path / "cubic.png"
    render.save(cubic, str(path))
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    fig = render.figure(cubic)
    height = rgb.shape[0]
    assert rgb.shape[:2] == (500, 800) and colours(path) > 20
    orange = np.array([round(c * 255) for c in to_rgb("C1")])  # the second curve, df/dx
    axes = fig.axes[0]
    for root in (-1.0, 1.0):
        column, row = axes.transData.transform((root, 0.0))
        column, row = int(round(column)), int(round(height - row))
        patch = rgb[row - 4:row + 5, column - 4:column + 5]
        assert (np.abs(patch - orange).sum(axis=2) < 60).any(), f"no df/dx pixels at x = {root}"
    # and away from the roots, on the x-axis, no orange: it is not just everywhere
    column, row = axes.transData.transform((-2.5, 0.0))
    patch = rgb[int(height - row) - 3:int(height - row) + 4, int(column) - 3:int(column) + 4]
    assert not (np.abs(patch - orange).sum(axis=2) < 60).any()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_terminal_drawing(cubic, capsys):
    from pdiff.render import plot as render

    render.terminal(cubic)
    import re

    drawn = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "df/dx" in drawn and len(drawn.splitlines()) > 10
    render.terminal(plot.plot("x y", points=11, critical=False))
    assert len(capsys.readouterr().out.splitlines()) > 5


def test_a_pole_is_a_gap_not_a_spike():
    data = plot.plot("1/x", ranges="x=-2:2")
    for curve in data.curves:
        y = curve.y
        assert np.isnan(y[np.argmin(np.abs(data.x))]), curve.label
        drawn = np.isfinite(y[:-1]) & np.isfinite(y[1:])  # the segments a line plot draws
        spans = drawn & (data.x[:-1] < 0) & (data.x[1:] > 0)
        assert not spans.any(), curve.label
    lo, hi = data.ylim
    assert np.isfinite(lo) and np.isfinite(hi) and hi - lo < 1e4  # not flattened by 1/x near 0


def test_break_poles_cuts_a_leap_across_the_window():
    y = np.array([1.0, 2.0, 50.0, -50.0, -2.0, -1.0])
    cut = plot.break_poles(y, (-5.0, 5.0))
    assert np.isnan(cut[2]) and np.isnan(cut[3]) and np.isfinite(cut[[0, 1, 4, 5]]).all()
    assert np.isnan(plot.break_poles(np.array([0.0, np.inf, 1.0]))[1])


def test_tangent_uses_the_engine_value_and_slope():
    data = plot.plot("x^3 - 3x", ranges="x=-3:3", at="x=2")
    assert (data.tangent.value, data.tangent.slope) == (2.0, 9.0)
    assert data.curves[-1].label == "tangent at x = 2"


def test_svg_is_xml_with_a_path_per_curve_and_the_legend(tmp_path):
    path = tmp_path / "cubic.svg"
    result = invoke("plot", "x^3 - 3x", "--range", "x=-3:3", "-o", str(path))
    assert result.exit_code == 0, result.output
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    groups = {g.get("id"): g for g in root.iter(f"{ns}g")}
    for label in ("f", "df/dx", "d2f/dx2"):
        assert groups[f"curve {label}"].find(f"{ns}path") is not None, label
    texts = "".join("".join(t.itertext()) for t in root.iter(f"{ns}text"))
    assert "df/dx" in texts and "d2f/dx2" in texts and "float64 on cpu" in texts


def test_pdf(tmp_path):
    path = tmp_path / "sin.pdf"
    assert invoke("plot", "sin(x)", "-r", "x=-pi:pi", "-o", str(path)).exit_code == 0
    assert path.read_bytes().startswith(b"%PDF")


def test_contour_with_arrows_and_surface(tmp_path):
    contour, surface = tmp_path / "contour.png", tmp_path / "surface.png"
    result = invoke("plot", "x^2 - y^2", "-r", "x=-2:2,y=-1:1", "-o", str(contour), "-n", "31")
    assert result.exit_code == 0, result.output
    assert colours(contour) > 50
    result = invoke("plot", "x^2 - y^2", "-r", "x=-2:2,y=-1:1", "--surface", "-o", str(surface), "-n", "31")
    assert result.exit_code == 0, result.output
    with Image.open(surface) as image:
        assert image.size == (800, 500)
    assert colours(surface) > 50


def test_contour_data():
    data = plot.plot("x^2 - y^2", ranges="x=-2:2,y=-1:1", points=21, critical=False)
    gx, gy = np.meshgrid(data.x, data.y)
    np.testing.assert_allclose(data.z, gx ** 2 - gy ** 2, atol=1e-12)
    np.testing.assert_allclose(data.gradient[0], 2 * gx, atol=1e-12)
    np.testing.assert_allclose(data.gradient[1], -2 * gy, atol=1e-12)


@pytest.mark.parametrize("args, message", [
    (["x"], "-o plot.png"),  # not a terminal, no -o
    (["x", "-o", "a.gif"], ".png, .svg or .pdf"),
    (["x", "-r", "x=1", "-o", "a.png"], "cannot read"),
    (["x", "-r", "z=1:2", "-o", "a.png"], "not a variable"),
    (["x y z", "-o", "a.png"], "one or two variables"),
    (["x^2 + y^2 = 1", "-o", "a.png"], "not an equation"),
    (["x y", "--at", "x=1", "-o", "a.png"], "one variable"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("plot", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not list(tmp_path.iterdir())


def test_library_errors():
    with pytest.raises(InputError):
        plot.parse_ranges("x=3:-3")
    assert plot.parse_ranges("x=-pi:pi, y=0:1")["x"] == pytest.approx((-np.pi, np.pi))


def test_help_does_not_import_matplotlib():
    code = ("import sys; from typer.testing import CliRunner; import pdiff.cli; r = CliRunner(); "
            "assert r.invoke(pdiff.cli.app, ['--help']).exit_code == 0; "
            "assert r.invoke(pdiff.cli.app, ['plot', '--help']).exit_code == 0; "
            "bad = [m for m in ('matplotlib', 'plotext') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
