"""Coverage-guided fuzzing of pdiff's input layer with atheris: the parser, the partial notation and --at points.

Property: any input either gives a result or raises one of pdiff's InputErrors with a one-line message under
400 characters, within SLOW_SECONDS. Anything else (another exception, a multi-line or huge message, a slow input)
is a finding: atheris stops and writes the input to crash-*/slow-* files.

    pip install atheris
    python scripts/fuzz_parse.py -max_total_time=600 -max_len=256 fuzz-corpus/   # ten minutes, corpus kept
    python scripts/fuzz_parse.py crash-<hash>                                      # replay one finding

The first input byte picks the target (parse, parse_partial, parse_point, or parse then partial); the rest is text
(UTF-8 with surrogate escapes, as argv and files reach Python). Seeds: the rows of tests/hostile/*.jsonl.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from pdiff import notation, parse, points
    from pdiff.errors import InputError

SLOW_SECONDS = 2.0
VARIABLES = ["x", "y", "theta", "r", "x1"]


class Finding(Exception):
    """A property failed (the message says which)."""


# known and reported, skipped so a session can look further: points.py quotes the whole --at text in its errors
# (a 45-byte invalid-UTF-8 value gives a 573-character line); set PDIFF_FUZZ_STRICT=1 to check it anyway
KNOWN_LONG_MESSAGES = () if os.environ.get("PDIFF_FUZZ_STRICT") == "1" else ("cannot read ", "--at ")


def _check_error(exc: InputError) -> None:
    message = str(exc)
    if "\n" in message or (len(message) >= 400 and not message.startswith(KNOWN_LONG_MESSAGES)):
        raise Finding(f"bad error message ({len(message)} chars): {message[:200]!r}")


def one_input(data: bytes) -> None:
    if not data:
        return
    target, text = data[0] % 4, data[1:].decode("utf-8", "surrogateescape")
    start = time.monotonic()
    try:
        if target == 0:
            parse.parse(text)
        elif target == 1:
            notation.parse_partial(text, VARIABLES)
        elif target == 2:
            points.parse_point(text)
        else:
            expression, _, partial = text.partition("\x00")
            result = parse.parse(expression)
            components = result if isinstance(result, list) else [result]
            names = sorted({symbol.name for component in components for symbol in component.free_symbols})
            notation.parse_partial(partial or "df/dx", names or VARIABLES)
    except InputError as exc:
        _check_error(exc)
    seconds = time.monotonic() - start
    if seconds > SLOW_SECONDS:
        raise Finding(f"slow input: {seconds:.1f} s for target {target}: {text[:200]!r}")


def seeds(directory: Path) -> None:
    """Write the corpus rows (and a few grammar samples) as seed files for the fuzzer's corpus directory."""
    directory.mkdir(parents=True, exist_ok=True)
    texts = ["x^2*sin(y) + y^3*cos(x)", "d2f/dxdy", "x=2,y=pi/4", "[x^2, x y]", "sin^2 x", "2x(x+1)", "e^x",
             "atan2(1, 2)", "min(x, y, 3)", "f_xy", "∂²f/∂x∂y", "log(x, 2)", "1.5e-3", "cbrt(-8)"]
    for path in sorted((Path(__file__).resolve().parents[1] / "tests" / "hostile").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts += [a for a in row["args"] if isinstance(a, str) and len(a) < 2000]
    for i, text in enumerate(dict.fromkeys(texts)):
        for target in range(3):
            (directory / f"seed-{i}-{target}").write_bytes(bytes([target]) + text.encode("utf-8", "surrogateescape"))


if __name__ == "__main__":
    corpus = [Path(a) for a in sys.argv[1:] if not a.startswith("-") and not Path(a).is_file()]
    for directory in corpus:
        if not any(directory.glob("seed-*")):
            seeds(directory)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
