"""Test-wide settings: which way `pdiff` runs.

By default no test may start a pdiff server (they would outlive the tests and answer later calls): PDIFF_SERVER=0
for every subprocess, except where tests/test_server.py sets up a server of its own in a temporary directory.

PDIFF_TEST_VIA_SERVER=1 runs the CLI tests through one server instead (the second pass in CI, .ci/run): only
the modules that run pdiff's CLI are collected; subprocesses use a server in a temporary runtime directory, and
`CliRunner().invoke(app, ...)` runs `python -m pdiff` through it (stdout, stderr, exit status; `output` is stdout
then stderr). The server is stopped when the session ends. Tests that monkeypatch pdiff's internals before
invoking the app cannot see their patch in the server.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile

VIA_SERVER = os.environ.get("PDIFF_TEST_VIA_SERVER") == "1"

if not VIA_SERVER:
    os.environ["PDIFF_SERVER"] = "0"
else:
    _RUNTIME = tempfile.mkdtemp(prefix="pdt", dir="/tmp")
    os.environ.update({"PDIFF_SERVER": "1", "XDG_RUNTIME_DIR": _RUNTIME})
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *filter(None, [os.environ.get("PYTHONPATH")])])

    import typer.testing

    _invoke = typer.testing.CliRunner.invoke

    def _invoke_via_server(self, app, args=None, input=None, env=None, catch_exceptions=True, color=False,
                           **extra):
        from pdiff.cli import app as pdiff_app

        argv = shlex.split(args) if isinstance(args, str) else list(args or [])
        if app is not pdiff_app or extra or any("\0" in arg for arg in argv):
            # a NUL cannot be in a real process's argv (the fuzz tests feed it to the app in-process)
            return _invoke(self, app, args, input, env, catch_exceptions, color, **extra)
        environment = dict(os.environ)
        for key, value in {**(self.env or {}), **(env or {})}.items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        data = input.encode(self.charset) if isinstance(input, str) else (input or b"")
        done = subprocess.run([sys.executable, "-m", "pdiff", *argv], input=data, check=False, capture_output=True,
                              env=environment, timeout=600)
        return typer.testing.Result(runner=self, stdout_bytes=done.stdout, stderr_bytes=done.stderr,
                                    output_bytes=done.stdout + done.stderr, return_value=None,
                                    exit_code=done.returncode, exception=None)

    typer.testing.CliRunner.invoke = _invoke_via_server

    def pytest_ignore_collect(collection_path, config):
        """Only the modules that run pdiff's CLI (CliRunner, or `python -m pdiff` in a subprocess): the library
        tests would run exactly as in the first pass, and so would test_server (servers of its own) and
        test_hostile (its in-process launcher; test_server runs the corpus through a server)."""
        if collection_path.name in ("test_server.py", "test_hostile.py"):
            return True
        if collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
            text = collection_path.read_text(encoding="utf-8")
            return not ("CliRunner" in text or '"-m", "pdiff"' in text)
        return None

    def pytest_sessionfinish(session, exitstatus):
        subprocess.run([sys.executable, "-m", "pdiff", "server", "stop"], check=False, capture_output=True, timeout=60)
        shutil.rmtree(_RUNTIME, ignore_errors=True)
