"""The resident pdiff server: torch, SymPy and the app imported once; one forked child per request.

A request (pdiff/client.py) is an argv list with the caller's environment, umask, working directory and standard
streams (as file descriptors). The server forks a child from its warm state; the child takes the caller's
descriptors as 0, 1 and 2, the caller's environment, working directory and umask, and runs `pdiff.cli.run()`
exactly as the `pdiff` command does in-process, then sends its exit status. Forking per request keeps every
request's process-global state (cwd, environment, sys.stdin, signal handlers, the terminal Rich detects, the
memory cap, the SymPy worker and its deadline) its own, and lets several requests run at once; copy-on-write keeps
the imports warm in each child.

Forking a process that has torch loaded is safe only while it has run no torch operation (a used OpenMP pool does
not survive a fork), so the server warms imports and pure-Python work (the parser, SymPy) and never calls torch.

The server process itself:
- listens on a Unix socket in a private directory (0700), the socket 0600, and answers only peers of its own
  uid (SO_PEERCRED); no TCP. A request is bounded before it is read (MAX_REQUEST_BYTES, MAX_ARGUMENTS) and must
  arrive within REQUEST_SECONDS;
- holds a lock (flock on SOCKET.lock) while it lives, so clients racing to start a server start one;
- answers a client whose pdiff fingerprint differs with 'restart', stops listening and exits once its children
  end; exits when idle for --idle seconds, or when its socket is removed or replaced;
- forwards a client's Ctrl-C (SIGINT, SIGTERM, SIGHUP) to that client's child only, and kills the child's
  process group when its client goes away; a one-shot command still running BACKSTOP_GRACE s past twice its
  --timeout is killed too (the command's own deadline handles every case met so far; this is the last line).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import gc
import io
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

from pdiff import client

REQUEST_SECONDS = 10.0  # for a connected client to send its whole request
BACKSTOP_GRACE = 60.0
MAX_FDS = 4
TICK = 1.0


class _Connection:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""
        self.fds: list[int] = []
        self.size: int | None = None
        self.deadline = time.monotonic() + REQUEST_SECONDS
        self.pid = 0
        self.pidfd = -1
        self.kill_at: float | None = None
        self.started = 0.0


class Server:
    def __init__(self, path: str, idle: float, fingerprint: str):
        self.path = path
        self.idle = idle
        self.fingerprint = fingerprint
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, _Connection] = {}
        self.children: dict[int, _Connection] = {}  # pidfd (or pid when polling) → connection
        self.listener: socket.socket | None = None
        self.lock_fd = -1
        self.identity = None
        self.last_activity = time.monotonic()
        self.started = time.time()
        self.served = 0
        self.stopping = False
        self.stop_requested = False  # SIGTERM: stop listening at the next turn of the loop
        self.spare: tuple[int, socket.socket] | None = None  # (pid, channel) of the child for the next request

    # -- life ---------------------------------------------------------------------------------------------------

    def lock(self) -> bool:
        self.lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.lock_fd)
            self.lock_fd = -1
            return False
        return True

    def listen(self) -> None:
        temporary = f"{self.path}.{os.getpid()}.tmp"
        with _suppress(FileNotFoundError):
            os.unlink(temporary)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)
        try:
            listener.bind(temporary)
        finally:
            os.umask(previous)
        os.chmod(temporary, 0o600)
        listener.listen(128)
        listener.setblocking(False)
        os.rename(temporary, self.path)  # atomic: a stale socket is replaced, a client never sees a half-made one
        info = os.stat(self.path)
        self.identity = (info.st_dev, info.st_ino)
        self.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, ("listen", None))
        self.last_activity = time.monotonic()  # idle from now, not from before the warm-up

    def stop_listening(self) -> None:
        """Give the socket and the lock up (a new server may start now); children still running finish."""
        self.stopping = True
        self.drop_spare()
        if self.listener is not None:
            self.selector.unregister(self.listener)
            if self._owns_socket():
                with _suppress(OSError):
                    os.unlink(self.path)
            self.listener.close()
            self.listener = None
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    def _owns_socket(self) -> bool:
        try:
            info = os.stat(self.path)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self.identity

    def status(self) -> dict:
        return {"pid": os.getpid(), "socket": self.path, "fingerprint": self.fingerprint,
                "started": self.started, "uptime": time.time() - self.started, "served": self.served,
                "running": len(self.children), "idle_timeout": self.idle, "python": sys.executable}

    def serve(self) -> int:
        while True:
            if self.stop_requested and not self.stopping:
                self.stop_listening()
            if self.stopping and not self.children and not self.connections:
                return 0
            now = time.monotonic()
            if not self.stopping:
                if not self.connections and now - self.last_activity > self.idle:
                    self.stop_listening()
                    continue
                if not self._owns_socket():  # removed (logout cleans $XDG_RUNTIME_DIR) or replaced
                    self.stop_listening()
                    continue
            for event, _mask in self.selector.select(TICK):
                kind, connection = event.data
                if kind == "listen":
                    self._accept()
                elif kind == "conn":
                    self._readable(connection)
                elif kind == "child":
                    self._reap(connection)
            self._deadlines()

    # -- connections --------------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while self.listener is not None:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    return
                raise
            _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                  struct.calcsize("3i")))
            if uid != os.getuid():
                sock.close()
                continue
            sock.setblocking(False)
            connection = _Connection(sock)
            self.connections[sock.fileno()] = connection
            self.selector.register(sock, selectors.EVENT_READ, ("conn", connection))
            self.last_activity = time.monotonic()

    def _close(self, connection: _Connection) -> None:
        for fd in connection.fds:
            with _suppress(OSError):
                os.close(fd)
        connection.fds = []
        if connection.sock.fileno() >= 0:
            self.connections.pop(connection.sock.fileno(), None)
            with _suppress(KeyError, ValueError):
                self.selector.unregister(connection.sock)
            connection.sock.close()
        self.last_activity = time.monotonic()

    def _reply(self, connection: _Connection, kind: bytes, payload) -> None:
        data = json.dumps(payload).encode("utf-8")
        connection.sock.setblocking(True)
        connection.sock.settimeout(2.0)
        try:
            connection.sock.sendall(client.FRAME.pack(kind, len(data)) + data)
        except OSError:
            pass
        finally:
            with _suppress(OSError):
                connection.sock.setblocking(False)

    def _readable(self, connection: _Connection) -> None:
        if connection.pid:  # running: the client may send signals, or go away (cancel)
            try:
                data = connection.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._kill(connection)
                self._close(connection)
                return
            connection.buffer += data
            while len(connection.buffer) >= client.FRAME.size + 1:
                kind, size = client.FRAME.unpack_from(connection.buffer)
                body = connection.buffer[client.FRAME.size:client.FRAME.size + size]
                if len(body) < size:
                    break
                connection.buffer = connection.buffer[client.FRAME.size + size:]
                if kind == b"S" and size == 1 and body[0] in client.FORWARDED_SIGNALS:
                    with _suppress(ProcessLookupError):
                        os.kill(connection.pid, body[0])
            return
        try:
            if connection.size is None:
                want = client.HEADER.size - len(connection.buffer)
                data, ancillary, _flags, _ = connection.sock.recvmsg(
                    want, socket.CMSG_SPACE(MAX_FDS * 4), getattr(socket, "MSG_CMSG_CLOEXEC", 0))
                for level, kind, body in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        connection.fds += list(struct.unpack(f"{len(body) // 4}i", body[:len(body) // 4 * 4]))
            else:
                data = connection.sock.recv(min(1 << 20, connection.size - len(connection.buffer)))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(connection)
            return
        connection.buffer += data
        if connection.size is None:
            if len(connection.buffer) < client.HEADER.size:
                return
            magic, size = client.HEADER.unpack(connection.buffer)
            if magic != client.MAGIC or size > client.MAX_REQUEST_BYTES or len(connection.fds) > MAX_FDS:
                self._reply(connection, b"E", "refused: not a pdiff request, or longer than the server takes")
                self._close(connection)
                return
            connection.size, connection.buffer = size, b""
        if len(connection.buffer) < connection.size:
            return
        self._dispatch(connection)

    def _dispatch(self, connection: _Connection) -> None:
        try:
            request = json.loads(connection.buffer)
        except ValueError:
            request = None
        connection.buffer = b""
        op = request.get("op") if isinstance(request, dict) else None
        if op == "status":
            self._reply(connection, b"J", self.status())
            self._close(connection)
            return
        if op == "stop":
            self._reply(connection, b"J", {**self.status(), "stopping": True})
            self._close(connection)
            self.stop_listening()
            return
        problem = _invalid(request) if op == "run" else "unknown request"
        if problem is None and request["fingerprint"] != self.fingerprint:
            self.stop_listening()  # before the answer, so the client's new server can take the socket at once
            self._reply(connection, b"R", "restart")
            self._close(connection)
            return
        if problem is not None or len(connection.fds) < 3 or self.stopping:
            self._reply(connection, b"E", problem or "refused")
            self._close(connection)
            return
        self._fork(connection, request)

    # -- children -----------------------------------------------------------------------------------------------

    def _fork(self, connection: _Connection, request: dict) -> None:
        """Hand the request to the spare child (forked ahead, its SymPy worker already waiting), else fork one."""
        pid = self._use_spare(connection, request)
        if not pid:
            keep = set(connection.fds) | {connection.sock.fileno()}
            own = self._own_fds() - keep
            pid = os.fork()
            if pid == 0:
                code = 70
                try:
                    code = run_child(connection.sock, connection.fds, request, own)
                finally:
                    os._exit(code)
            with _suppress(OSError):
                os.setpgid(pid, pid)
        for fd in connection.fds:
            os.close(fd)
        connection.fds = []
        connection.pid, connection.started = pid, time.monotonic()
        connection.kill_at = _backstop(request["argv"])
        self.served += 1
        try:
            connection.pidfd = os.pidfd_open(pid)
            self.selector.register(connection.pidfd, selectors.EVENT_READ, ("child", connection))
        except (AttributeError, OSError):
            connection.pidfd = -1  # no pidfd: reaped by polling in _deadlines
        self.children[pid] = connection
        self._reply(connection, b"A", pid)
        self.spawn_spare()

    def spawn_spare(self) -> None:
        """Fork the child for the next request now, off the next request's path: it waits on a socket pair for
        the request and the client's descriptors, with a SymPy worker forked and waiting too."""
        if self.spare is not None or self.stopping or os.environ.get("PDIFF_SERVER_SPARE") == "0":
            return
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        own = self._own_fds() | {mine.fileno()}
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = run_spare(theirs, own)
            finally:
                os._exit(code)
        theirs.close()
        with _suppress(OSError):
            os.setpgid(pid, pid)
        self.spare = (pid, mine)

    def _use_spare(self, connection: _Connection, request: dict) -> int:
        if self.spare is None:
            return 0
        pid, channel = self.spare
        self.spare = None
        try:
            client.send_request(channel, request, [connection.sock.fileno(), *connection.fds])
            return pid
        except OSError:  # the spare is gone (killed from outside): fork one for this request instead
            with _suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with _suppress(ChildProcessError):
                os.waitpid(pid, 0)
            return 0
        finally:
            channel.close()

    def drop_spare(self) -> None:
        if self.spare is not None:
            pid, channel = self.spare
            self.spare = None
            channel.close()  # end of file: the spare exits
            with _suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with _suppress(ChildProcessError):
                os.waitpid(pid, 0)

    def _own_fds(self) -> set[int]:
        fds = {self.selector.fileno() if hasattr(self.selector, "fileno") else -1, self.lock_fd}
        if self.spare is not None:
            fds.add(self.spare[1].fileno())
        if self.listener is not None:
            fds.add(self.listener.fileno())
        for connection in [*self.connections.values(), *self.children.values()]:
            fds.add(connection.sock.fileno())
            fds.update(connection.fds)
            fds.add(connection.pidfd)
        return {fd for fd in fds if fd is not None and fd >= 0}

    def _reap(self, connection: _Connection) -> bool:
        try:
            done, wait_status = os.waitpid(connection.pid, os.WNOHANG)
        except ChildProcessError:
            done, wait_status = connection.pid, 0
        if not done:
            return False
        self.children.pop(connection.pid, None)
        if connection.pidfd >= 0:
            self.selector.unregister(connection.pidfd)
            os.close(connection.pidfd)
            connection.pidfd = -1
        code = os.waitstatus_to_exitcode(wait_status)
        if code < 0 and connection.sock.fileno() >= 0:  # killed by a signal: the child could not say so itself
            self._reply(connection, b"X", code)
        connection.pid = 0
        self._close(connection)
        return True

    def _kill(self, connection: _Connection) -> None:
        if connection.pid:
            try:
                os.killpg(connection.pid, signal.SIGKILL)
            except OSError:
                with _suppress(OSError):
                    os.kill(connection.pid, signal.SIGKILL)

    def _deadlines(self) -> None:
        now = time.monotonic()
        if self.spare is not None:  # a spare killed from outside is replaced
            try:
                gone = os.waitpid(self.spare[0], os.WNOHANG)[0]
            except ChildProcessError:
                gone = True
            if gone:
                self.spare[1].close()
                self.spare = None
                self.spawn_spare()
        for connection in list(self.connections.values()):
            if not connection.pid and now > connection.deadline:
                self._close(connection)
        for connection in list(self.children.values()):
            if connection.kill_at is not None and now - connection.started > connection.kill_at:
                connection.kill_at = None
                self._kill(connection)
            if connection.pidfd < 0:
                self._reap(connection)


def _backstop(argv: list[str]) -> float | None:
    """Seconds after which the server kills a request that its own deadline did not end: one-shot commands
    only (`shell` and `check --file` run many questions, each with its own deadline)."""
    from pdiff.shell import line_timeout

    if not argv or argv[0] == "shell" or (argv[0] == "check" and "--file" in argv):
        return None
    seconds = line_timeout(argv, 20.0)
    if not 0 < seconds < 1e7:
        return None
    return 2 * seconds + BACKSTOP_GRACE


def _invalid(request: dict) -> str | None:
    """Why a run request is malformed, or None. Every field is plain data; nothing is ever evaluated."""
    argv, env = request.get("argv"), request.get("env")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return "argv must be a list of strings"
    if len(argv) > client.MAX_ARGUMENTS:
        return f"more than {client.MAX_ARGUMENTS} arguments"
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        return "env must map strings to strings"
    if not isinstance(request.get("fingerprint"), str) or not isinstance(request.get("umask"), int):
        return "fingerprint and umask are required"
    streams = request.get("streams")
    if not (isinstance(streams, list) and len(streams) == 3 and all(
            isinstance(s, list) and len(s) == 3 and isinstance(s[0], str) and isinstance(s[1], str) for s in streams)):
        return "streams must describe stdin, stdout and stderr"
    if request.get("cwd") is not None and not isinstance(request["cwd"], str):
        return "cwd must be a string"
    return None


# ---------------------------------------------------------------------------------------------------------------
# the child: one request, as `pdiff` would run it in-process


def _leave_server(server_fds: set[int]) -> None:
    """In a child: the server's descriptors closed (the listener, the lock, other clients' connections and
    streams: not this request's), its own process group (the server stops it and its SymPy workers as one), the
    signal dispositions of a fresh process."""
    for fd in server_fds:
        with _suppress(OSError):
            os.close(fd)
    with _suppress(OSError):
        os.setpgid(0, 0)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGALRM):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as the interpreter starts (pdiff.cli.run sets SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)


def run_spare(channel: socket.socket, server_fds: set[int]) -> int:
    """The spare child: a SymPy worker forked now, then the next request (sent by the server with the client's
    connection and descriptors), run as run_child runs one. Ends when the server closes the channel."""
    _leave_server(server_fds)
    from pdiff import bounds

    bounds._RESIDENTS = [bounds.BoundedWorker(None, bounds.DEFAULT_MEMORY_MB)]  # what bounds.start() picks up
    try:
        header, fds, _flags, _ = socket.recv_fds(channel, client.HEADER.size, MAX_FDS + 1)
        magic, size = client.HEADER.unpack(header) if len(header) == client.HEADER.size else (None, 0)
        data = b""
        while magic == client.MAGIC and len(data) < size:
            chunk = channel.recv(min(1 << 20, size - len(data)))
            if not chunk:
                break
            data += chunk
    except OSError:
        return 0
    if magic != client.MAGIC or len(data) < size or len(fds) < 4:
        return 0
    channel.close()
    conn = socket.socket(fileno=fds[0])
    return run_child(conn, fds[1:], json.loads(data), set(), left=True)


def run_child(sock: socket.socket, fds: list[int], request: dict, server_fds: set[int], left: bool = False) -> int:
    if not left:
        _leave_server(server_fds)
    os.umask(request["umask"])
    stdin, stdout, stderr, *rest = fds
    try:
        if rest and request.get("cwd_fd"):
            os.fchdir(rest[0])
        elif request.get("cwd"):
            os.chdir(request["cwd"])
    except OSError:
        pass
    for fd in rest:
        os.close(fd)
    for target, fd in enumerate((stdin, stdout, stderr)):
        os.dup2(fd, target)
    for fd in {stdin, stdout, stderr} - {0, 1, 2}:
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request.get("argv0") or "pdiff", *request["argv"]]
    _standard_streams(request["streams"])
    import random

    random.seed()  # a fresh process would not share its parent's random state
    code = _run_cli()
    with _suppress(OSError):
        data = json.dumps(code).encode()
        sock.setblocking(True)
        sock.sendall(client.FRAME.pack(b"X", len(data)) + data)
    return code


def _standard_streams(streams: list) -> None:
    """sys.stdin, stdout and stderr as the interpreter would make them for the client's descriptors."""
    (in_enc, in_err, _), (out_enc, out_err, out_line), (err_enc, err_err, _) = streams
    tty = os.isatty(1)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding=in_enc,
                                 errors=in_err)
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding=out_enc,
                                  errors=out_err, line_buffering=out_line or tty)
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding=err_enc,
                                  errors=err_err, line_buffering=True)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def _run_cli() -> int:
    """pdiff.cli.run() with what the interpreter does around a script: SystemExit → the status, an uncaught
    exception → its traceback and 1, an uncaught Ctrl-C → death by SIGINT; the streams flushed at the end."""
    import traceback

    from pdiff.cli import run

    code = 0
    try:
        run()
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code & 0xFF
        else:
            with _suppress(Exception):
                print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:  # noqa: BLE001 - as the interpreter: the traceback, status 1
        traceback.print_exc()
        code = 1
    if not _flush():
        code = 120  # the interpreter's status when flushing stdout fails at exit
    return code


def _flush() -> bool:
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            ok = False
    return ok


class _suppress:
    def __init__(self, *kinds):
        self.kinds = kinds

    def __enter__(self):
        return self

    def __exit__(self, kind, _value, _tb):
        return kind is not None and issubclass(kind, self.kinds)


# ---------------------------------------------------------------------------------------------------------------
# start-up


# calls run once in the server at start-up: no --at, so no torch operation, with the symbolic work done in the
# server itself (not a worker), which fills SymPy's caches and imports every module a request needs
WARM_CALLS = (["diff", "x^2 sin(y) + y^3 cos(x)", "d2f/dxdy", "--format", "plain"],
              ["diff", "exp(x y) / (1 + x^2) + sqrt(x) ln(y)", "--format", "table"],
              ["grad", "x^2 y + atan(y/x)", "--format", "json"],
              ["hessian", "x^3 - 3x + y^2 + sin(x y)", "--format", "plain"])


class _Inline:
    """A stand-in for a bounded worker during warm-up: the job runs here, to its end."""

    def __init__(self, function, args):
        self.function, self.args = function, args

    def collect(self, _deadline):
        from pdiff.bounds import WorkerOutcome

        outcome = WorkerOutcome()
        try:
            outcome.messages = list(self.function(*self.args))
            outcome.finished = True
        except Exception as exc:  # noqa: BLE001
            outcome.error = str(exc)
        return outcome

    def close(self) -> None:
        pass


def warm_up() -> None:
    """Import everything a request needs and run the pure-Python parts once (no torch operation: see above)."""
    import sympy  # noqa: F401
    import torch  # noqa: F401

    import pdiff
    from pdiff import bounds
    from pdiff.cli import app, expressions_not_options

    _import_all(pdiff)
    # the one Click command every child uses, built first so that the warm calls below fill its lazy state
    # (Typer builds a pydantic adapter per parameter on first use: ~7 ms a call when each child did it)
    _build_once(app)

    start = bounds.start
    bounds.start = lambda function, *args, memory_mb=0: _Inline(function, args)
    try:
        for args in WARM_CALLS:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    app(args=expressions_not_options(args), prog_name="pdiff", standalone_mode=False)
                except BaseException:  # noqa: BLE001, S110 - warming is an optimisation, never a reason not to serve
                    pass
    finally:
        bounds.start = start
    _warm_exact_values()
    gc.collect()
    gc.freeze()  # children then copy no page for the collector's sake


def _warm_exact_values() -> None:
    """The symbolic side at a point (exact values, kink limits), which the warm calls above leave out (a call with
    --at would run torch here): the worker's first exact value in a child cost ~10 ms of SymPy's lazy set-up."""
    import sympy as sp

    from pdiff import bounds, symbolic
    from pdiff.parse import parse

    expression = parse("exp(x y) sin(x + y^2) + atan(y/x) + sqrt(x^2 + y^2) ln(1 + x^2 y^2) + abs(x - y)")
    point = {"x": sp.Rational(13, 10), "y": sp.Rational(37, 20)}
    entries = symbolic.identity_entries(1, 2)
    with contextlib.suppress(Exception):  # warming is an optimisation, never a reason not to serve
        list(symbolic.entry_jobs([expression], [("x",), ("y", "x")], entries, [point], 0.0, bounds.alarm))


def _import_all(package) -> None:
    """Every module of pdiff (not matplotlib or plotext: the plot renderer imports those when it draws)."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if module.name.rsplit(".", 1)[-1] not in ("__main__", "client", "server"):
            try:
                importlib.import_module(module.name)
            except Exception:  # noqa: BLE001, S110 - an optional dependency missing: that module is imported when used
                pass


def _build_once(app) -> None:
    """Typer builds the Click command from the app on every call (~0.1 s of signatures, type hints and
    validators); `pdiff shell` builds it once and reuses it, and so does every child of the server."""
    import typer.main

    built = typer.main.get_command(app)
    build = typer.main.get_command
    if getattr(build, "pdiff_built_once", False):
        return

    def get_command(instance):
        return built if instance is app else build(instance)

    get_command.pdiff_built_once = True
    typer.main.get_command = get_command


def threads() -> int:
    """Threads of this process (1 unless something started a thread pool, which a fork would not carry over)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 1


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pdiff-server")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--idle", type=float, default=client.DEFAULT_IDLE_SECONDS)
    options = parser.parse_args(args)
    fingerprint = client.fingerprint()
    server = Server(options.socket, options.idle, fingerprint)
    if not server.lock():
        return 0  # another server holds the socket (or is starting): the client connects to that one
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "stop_requested", True))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = time.monotonic()
    warm_up()
    server.listen()
    server.spawn_spare()
    print(f"pdiff server {os.getpid()} listening on {options.socket} (warm in {time.monotonic() - started:.2f} s, "
          f"{threads()} thread)", file=sys.stderr, flush=True)
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
