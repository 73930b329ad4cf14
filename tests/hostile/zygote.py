"""A warm launcher for the hostile corpus: imports pdiff, SymPy and torch once, then forks one child per row.

Each child is a fresh process running pdiff's real console entry point (`pdiff.cli.run`, what `python -m pdiff`
runs) with its own argv, working directory and stdin/stdout/stderr file descriptors, and exits with the CLI's exit
status; the launcher kills it at the row's wall-clock limit. Only the interpreter start-up and imports (about 2 s
per row, minutes for the corpus on a 2-core machine) are shared. The launcher itself never runs torch operations,
so forking it is as safe as pdiff's own fork of its SymPy worker.

Protocol: one JSON object per line on stdin {"args", "cwd", "stdin", "out", "err", "limit"}; one JSON object per
line on stdout {"status": exit status or null when killed, "seconds"}.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def _child(job: dict) -> None:
    import io
    import traceback

    from pdiff import cli

    os.chdir(job["cwd"])
    fds = [os.open(job["stdin"], os.O_RDONLY),
           os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
           os.open(job["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    # the streams a fresh interpreter would have (UTF-8 mode off, a UTF-8 locale)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="surrogateescape")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="surrogateescape")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True)
    sys.argv = ["pdiff", *job["args"]]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    try:
        cli.run()
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # what the interpreter would do with an uncaught exception
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


def main() -> None:
    import sympy  # noqa: F401 - warm imports, shared by every child
    import torch  # noqa: F401

    import pdiff.api  # noqa: F401
    import pdiff.cli  # noqa: F401
    import pdiff.lower  # noqa: F401
    import pdiff.render  # noqa: F401

    for line in sys.stdin:
        job = json.loads(line)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                _child(job)
            finally:
                os._exit(70)
        status = None
        while True:
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(wait_status)
                break
            if time.monotonic() - start > job["limit"]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.01)
        print(json.dumps({"status": status, "seconds": time.monotonic() - start}), flush=True)


if __name__ == "__main__":
    main()
