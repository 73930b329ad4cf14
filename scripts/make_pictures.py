"""Redraw the README's pictures from pdiff itself: `python scripts/make_pictures.py` (writes docs/*.png)."""

from __future__ import annotations

from pathlib import Path

from pdiff import plot
from pdiff.render import plot as render

DOCS = Path(__file__).resolve().parent.parent / "docs"

PICTURES = {
    "plot-x3.png": dict(expression="x^3 - 3x", ranges="x=-3:3", at="x=2"),
    "contour.png": dict(expression="x^2 - y^2", ranges="x=-2:2,y=-1:1"),
}

if __name__ == "__main__":
    DOCS.mkdir(exist_ok=True)
    for name, request in PICTURES.items():
        render.save(plot.plot(device="cpu", **request), str(DOCS / name))
        print(DOCS / name)
