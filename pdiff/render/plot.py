"""Pictures of pdiff.plot's data: files with matplotlib (Agg), the terminal with plotext.

matplotlib and plotext are imported inside the functions only, so `pdiff --help` and every other command never
load them. No math here: the curves, gaps, y-window and critical points arrive computed.
"""

from __future__ import annotations

import sys

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
SIZE_INCHES = (8.0, 5.0)
DPI = 100
ARROWS = 16  # per axis, at most


def file_format(path: str) -> str:
    """png, svg or pdf from the file name's extension; ValueError for any other."""
    import os

    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise ValueError(f"-o {path}: write a .png, .svg or .pdf file (not {extension or 'no extension'!r})")
    return FORMATS[extension]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(data, surface: bool = False):
    """A matplotlib Figure of a LinePlot or SurfacePlot (`surface`: a 3-D surface instead of a contour)."""
    plt = _pyplot()
    fig = plt.figure(figsize=SIZE_INCHES, dpi=DPI)
    if hasattr(data, "curves"):
        _lines(fig, data)
    elif surface:
        _surface(fig, data)
    else:
        _contour(fig, data)
    fig.text(0.99, 0.01, data.note, ha="right", va="bottom", fontsize=8, color="0.4")
    _title(fig, data)
    return fig


def _title(fig, data) -> None:
    axes = fig.axes[0]
    axes.set_title(f"${data.latex}$" if data.latex else data.read_as)


def _lines(fig, data) -> None:
    axes = fig.add_subplot(1, 1, 1)
    axes.axhline(0, color="0.6", linewidth=0.8)
    axes.axvline(0, color="0.85", linewidth=0.8)
    for curve in data.curves:
        style = {"linestyle": "--", "linewidth": 1.2} if curve.label.startswith("tangent") else {"linewidth": 1.8}
        (line,) = axes.plot(data.x, curve.y, label=curve.label, **style)
        line.set_gid(f"curve {curve.label}")  # an SVG's <g id=...> per curve
    if data.tangent is not None:
        axes.plot([data.tangent.at], [data.tangent.value], "o", color="black", markersize=4)
    axes.set_xlim(data.x[0], data.x[-1])
    axes.set_ylim(*data.ylim)
    axes.set_xlabel(data.variable)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best")


def _contour(fig, data) -> None:
    import numpy as np

    axes = fig.add_subplot(1, 1, 1)
    filled = axes.contourf(data.x, data.y, data.z, levels=24, cmap="viridis",
                           vmin=data.zlim[0], vmax=data.zlim[1])
    fig.colorbar(filled, ax=axes, label=data.label)
    step_x = max(1, len(data.x) // ARROWS)
    step_y = max(1, len(data.y) // ARROWS)
    gx, gy = np.meshgrid(data.x[::step_x], data.y[::step_y])
    u = data.gradient[0][::step_y, ::step_x]
    v = data.gradient[1][::step_y, ::step_x]
    axes.quiver(gx, gy, u, v, color="white", alpha=0.8, angles="xy", pivot="mid")
    for mark in data.critical:
        px, py = (mark.point[name] for name in data.variables)
        axes.plot([px], [py], "o", color="red", markersize=6)
        axes.annotate(mark.classification, (px, py), xytext=(5, 5), textcoords="offset points", color="red")
    axes.set_xlabel(data.variables[0])
    axes.set_ylabel(data.variables[1])
    axes.set_aspect("auto")


def _surface(fig, data) -> None:
    import numpy as np

    axes = fig.add_subplot(1, 1, 1, projection="3d")
    gx, gy = np.meshgrid(data.x, data.y)
    z = np.clip(data.z, *data.zlim)
    axes.plot_surface(gx, gy, np.ma.masked_invalid(z), cmap="viridis", linewidth=0, antialiased=True)
    axes.set_xlabel(data.variables[0])
    axes.set_ylabel(data.variables[1])
    axes.set_zlabel(data.label)


def save(data, path: str, surface: bool = False) -> None:
    """Write the picture to `path` in the format its extension names; a title mathtext cannot read is written
    as plain text instead."""
    fmt = file_format(path)
    plt = _pyplot()
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"  # an SVG's texts stay text (searchable, legend readable)
    fig = figure(data, surface)
    try:
        try:
            fig.savefig(path, format=fmt)
        except ValueError:  # mathtext could not parse the title
            fig.axes[0].set_title(data.read_as)
            fig.savefig(path, format=fmt)
    finally:
        plt.close(fig)


def terminal(data) -> None:
    """Draw in the terminal with plotext: the curves of a LinePlot, or a heat map of a SurfacePlot (plotext 6's
    figure API, or the older module-level one)."""
    import math

    import plotext

    lines = []
    if hasattr(data, "curves"):
        lo, hi = data.ylim
        for curve in data.curves:
            points = [(x, y) for x, y in zip(data.x.tolist(), curve.y.tolist()) if not math.isnan(y) and lo <= y <= hi]
            if points:
                lines.append((curve.label, [p[0] for p in points], [p[1] for p in points]))
    grid = None if hasattr(data, "curves") else [[0.0 if math.isnan(v) else v for v in row]
                                                 for row in data.z[::-1].tolist()]
    if hasattr(plotext, "clear_figure"):  # plotext 5
        plotext.clear_figure()
        for label, xs, ys in lines:
            plotext.plot(xs, ys, label=label, marker="braille")
        if grid is not None:
            plotext.matrix_plot(grid)
        plotext.title(data.read_as)
        drawn = plotext.build()
    else:  # plotext 6
        figure = plotext.figure
        figure.clear()
        for label, xs, ys in lines:
            signal = figure.signal(xs, ys)
            signal.label(label)
            try:
                signal.lines()  # joined, not dots
            except Exception:  # noqa: BLE001  an older 6.x without it: dots are still a picture
                pass
            figure.draw(signal)
        if grid is not None:
            figure.draw(figure.heatmap(grid, map="viridis"))
        figure.title(data.read_as)
        drawn = str(figure.build())
    sys.stdout.write(drawn + "\n")
    sys.stdout.flush()
