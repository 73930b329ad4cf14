"""The `pdiff` command: a thin client of a resident pdiff server, or pdiff itself in this process.

Importing torch and SymPy takes seconds. A resident server (pdiff/server.py) imports them once; each call of
`pdiff` then sends it a request and waits for the exit status, while the work runs in a process the server forks
from its warm state. This module is that client and imports the standard library only: no torch, SymPy, Typer or
Rich, so a call costs the interpreter's start-up and a few milliseconds.

When: `PDIFF_SERVER=0` never; `PDIFF_SERVER=1` always, starting the server when none answers; unset, a server
already running is used and one is started only inside a login session (`$XDG_RUNTIME_DIR` set), so CI jobs,
containers and cron do not leave servers behind unless asked. `pdiff server start|status|stop` manage it by hand.

A request is data, never code: the argv list, the environment, the working directory, the umask and the encodings
of the standard streams, plus the client's own stdin, stdout, stderr and working directory as file descriptors
(SCM_RIGHTS). The server's child puts those descriptors at 0, 1 and 2, so it writes straight to the client's
terminal, pipe or file: terminal detection, terminal width, colour, `| head -1` (SIGPIPE) and byte-for-byte output
are those of an in-process run, and output streams as it is produced. The reply is the exit status, or the signal
that ended the child, which the client then raises on itself.

Failure is never the user's problem: no server, a server that cannot start, a stale socket, one that does not
accept a request within ACCEPT_SECONDS or drops it before answering: the call runs in this process instead, with
one line on stderr when something was wrong (not when the server is merely off).
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import socket
import stat
import struct
import sys
import time
import zlib

MAGIC = b"PDF1"  # request header: MAGIC, payload length (!I); reply frames: kind (1 byte), length (!I), payload
HEADER = struct.Struct("!4sI")
FRAME = struct.Struct("!cI")
MAX_REQUEST_BYTES = 4 << 20  # argv + environment; the OS itself allows about 2 MB of both (ARG_MAX)
MAX_ARGUMENTS = 16_384
ACCEPT_SECONDS = 10.0  # a server that has not forked the request by then is taken as hung
START_SECONDS = 60.0  # for a new server to import torch and SymPy and listen (a busy 2-core machine: ~10 s)
CANCEL_SECONDS = 3.0  # after a forwarded Ctrl-C (or SIGTERM, SIGHUP), how long the request may take to end
FAILED_RETRY_SECONDS = 600.0  # after a server failed to start, in-process without retrying for this long
DEFAULT_IDLE_SECONDS = 900.0
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
IMPORT_TIME_ENVIRONMENT = ("PYTHONPATH", "PYTHONHOME", "PYTHONHASHSEED", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                           "CUDA_VISIBLE_DEVICES", "PYTORCH_ENABLE_MPS_FALLBACK")  # read when torch is imported
COMPLETION_VARIABLE = "_PDIFF_COMPLETE"  # completion.SHELL_VARIABLE, set by the scripts Tab runs
# answered in ~0.1 s in-process: no server is started for them
_LIGHT_WORDS = ("-h", "--help", "--version", "--install-completion", "--show-completion")
_OFF, _ON = ("0", "off", "no", "false"), ("1", "on", "yes", "true")


class ServerUnusable(Exception):
    """The server cannot be used for this call (the message says why); the call runs in-process."""


# ---------------------------------------------------------------------------------------------------------------
# where the server lives


def package_dir() -> str:
    return os.path.dirname(os.path.abspath(__file__))


def fingerprint() -> str:
    """The installed pdiff: its version and the size and mtime of every .py file (about 50 stat calls, < 1 ms).
    A server answering a client with another fingerprint restarts, so an edit or an upgrade is picked up."""
    from pdiff import __version__

    root = package_dir()
    entries = [__version__]
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                    stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    info = entry.stat()
                    entries.append(f"{entry.path[len(root):]}:{info.st_size}:{info.st_mtime_ns}")
    text = "\n".join(sorted(entries)).encode("utf-8", "surrogateescape")
    return f"{__version__}-{zlib.crc32(text):08x}{zlib.adler32(text):08x}"


def _key() -> str:
    """One server per interpreter, pdiff installation and import-time environment."""
    parts = [sys.executable, package_dir(), sys.version,
             *(f"{name}={os.environ.get(name, '')}" for name in IMPORT_TIME_ENVIRONMENT)]
    return f"{zlib.crc32(chr(0).join(parts).encode('utf-8', 'surrogateescape')):08x}"


def runtime_dir() -> str:
    """$XDG_RUNTIME_DIR/pdiff, else a directory of this user's own in the temporary directory."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isabs(base):
        return os.path.join(base, "pdiff")
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", f"pdiff-{os.getuid()}")


def socket_path() -> str:
    return os.path.join(runtime_dir(), f"server-{_key()}.sock")


def private_dir(create: bool) -> str:
    """The runtime directory, created 0700 when asked; ServerUnusable unless it is a real directory (not a link)
    owned by this user with no access for group or others."""
    folder = runtime_dir()
    if create:
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ServerUnusable(f"cannot create {folder}: {exc.strerror}") from None
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        raise ServerUnusable(f"{folder} does not exist") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ServerUnusable(f"{folder} is not a directory of this user's own with mode 0700")
    return folder


def _check_socket_file(path: str) -> bool:
    """True when `path` is a socket of this user's own; False when there is none; ServerUnusable otherwise."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        raise ServerUnusable(f"{path} is not a socket of this user's own")
    return True


def connect(path: str) -> socket.socket | None:
    """A connection to the server at `path`, or None when none is listening there (no socket, a stale one)."""
    if not _check_socket_file(path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        return None
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EAGAIN, errno.ECONNREFUSED):  # a full backlog: treat as not answering
            return None
        raise ServerUnusable(f"cannot connect to {path}: {exc.strerror}") from None
    _pid, peer_uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                   struct.calcsize("3i")))
    if peer_uid != os.getuid():  # the directory is ours and 0700, so only root could put another's server there
        sock.close()
        raise ServerUnusable(f"the server at {path} runs as uid {peer_uid}, not this user")
    return sock


# ---------------------------------------------------------------------------------------------------------------
# talking to it


def send_request(sock: socket.socket, payload: dict, fds: list[int] = ()) -> None:
    data = json.dumps(payload).encode("ascii")  # ensure_ascii: lone surrogates (non-UTF-8 argv bytes) survive
    header = HEADER.pack(MAGIC, len(data))
    if fds:
        socket.send_fds(sock, [header], list(fds))
    else:
        sock.sendall(header)
    sock.sendall(data)


class Frames:
    """Reply frames from the server, read as they come."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer, self.closed = sock, b"", False

    def feed(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, OSError):
            chunk = b""
        if not chunk:
            self.closed = True
        self.buffer += chunk

    def pop(self) -> tuple[str, bytes] | None:
        if len(self.buffer) < FRAME.size:
            return None
        kind, size = FRAME.unpack_from(self.buffer)
        if len(self.buffer) < FRAME.size + size:
            return None
        payload = self.buffer[FRAME.size:FRAME.size + size]
        self.buffer = self.buffer[FRAME.size + size:]
        return kind.decode("ascii"), payload

    def wait(self, seconds: float | None, extra: tuple = ()) -> tuple[str, bytes] | None:
        """The next frame, or None at end of stream or after `seconds`."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            frame = self.pop()
            if frame is not None or self.closed:
                return frame
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining == 0.0:
                return None
            ready, _, _ = select.select([self.sock, *extra], [], [], remaining)
            if self.sock in ready:
                self.feed()
            elif ready:
                return ("wake", b"")


def query(op: str, path: str | None = None, timeout: float = 5.0) -> dict | None:
    """Ask a running server for `status` or to `stop`: its answer, or None when none is running."""
    sock = connect(path or socket_path())
    if sock is None:
        return None
    with sock:
        send_request(sock, {"op": op})
        frame = Frames(sock).wait(timeout)
    if frame is None or frame[0] != "J":
        return None
    return json.loads(frame[1])


# ---------------------------------------------------------------------------------------------------------------
# starting one


def _lock_is_free(lock_path: str) -> bool:
    """Nobody holds the server lock: no server is running or starting for this socket."""
    import fcntl

    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the lock if we took it
    return True


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("PDIFF_SERVER_IDLE", DEFAULT_IDLE_SECONDS)))
    except ValueError:
        return DEFAULT_IDLE_SECONDS


def spawn_server(path: str):
    """Start a server for `path` in its own session, detached from this terminal (it outlives this call)."""
    import subprocess

    folder = os.path.dirname(path)
    log = os.open(path[:-len(".sock")] + ".log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    # the same pdiff as this client, whatever the working directory: its parent folder first on sys.path
    bootstrap = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from pdiff.server import main; "
                 "sys.exit(main(sys.argv[1:]))")
    try:
        return subprocess.Popen(
            [sys.executable, "-c", bootstrap, os.path.dirname(package_dir()), "--socket", path,
             "--idle", str(idle_seconds())],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=folder, start_new_session=True, close_fds=True)
    finally:
        os.close(log)


def start_server(path: str, wait: float = START_SECONDS) -> socket.socket:
    """Start a server (unless one is starting already) and connect to it once it listens."""
    process = spawn_server(path)
    deadline = time.monotonic() + wait
    pause = 0.01
    while time.monotonic() < deadline:
        sock = connect(path)
        if sock is not None:
            return sock
        if process.poll() is not None and _lock_is_free(path + ".lock"):
            raise ServerUnusable(f"the server did not start (see {path[:-len('.sock')]}.log)")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.1)
    raise ServerUnusable(f"the server did not start within {wait:g} s")


def _start_in_background(path: str) -> None:
    """Start a server without waiting for it (unless one is starting already)."""
    try:
        private_dir(create=True)
        if _lock_is_free(path + ".lock"):
            spawn_server(path)
    except (ServerUnusable, OSError):
        pass  # the call runs in-process anyway


def _failed_marker(path: str) -> str:
    return path[:-len(".sock")] + ".failed"


def _recently_failed(path: str) -> bool:
    try:
        with open(_failed_marker(path), encoding="utf-8") as marker:
            recorded = marker.read()
        age = time.time() - os.stat(_failed_marker(path)).st_mtime
    except OSError:
        return False
    return recorded == fingerprint() and 0 <= age < FAILED_RETRY_SECONDS


def _record_failure(path: str) -> None:
    try:
        with open(os.open(_failed_marker(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as marker:
            marker.write(fingerprint())
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------------------------
# one call


def _mode() -> str:
    """'off', 'on' (start a server when none answers) or 'auto' (use a running one; start one in a login session)."""
    value = os.environ.get("PDIFF_SERVER", "").strip().lower()
    if value in _OFF:
        return "off"
    if value in _ON or os.environ.get("XDG_RUNTIME_DIR"):
        return "on"
    return "auto"


def _routed_in_process(argv: list[str]) -> bool:
    """Calls that never go to the server: managing it, and the interactive shell (it owns the terminal)."""
    if argv and argv[0] == "server":
        return True
    return bool(argv) and argv[0] == "shell" and "--file" not in argv and os.isatty(0) and os.isatty(1)


def _light(argv: list[str]) -> bool:
    return not argv or any(word in _LIGHT_WORDS for word in argv)


def _stream_info(stream) -> list:
    return [getattr(stream, "encoding", None) or "utf-8", getattr(stream, "errors", None) or "strict",
            bool(getattr(stream, "line_buffering", False))]


def _request(argv: list[str], cwd_fd: int) -> dict:
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    return {"op": "run", "fingerprint": fingerprint(), "argv": argv, "argv0": sys.argv[0],
            "env": dict(os.environ), "cwd": cwd, "cwd_fd": cwd_fd >= 0, "umask": umask,
            "streams": [_stream_info(sys.stdin), _stream_info(sys.stdout), _stream_info(sys.stderr)]}


def _within_bounds(request: dict) -> bool:
    if len(request["argv"]) > MAX_ARGUMENTS:
        return False
    size = sum(len(a) for a in request["argv"]) + sum(len(k) + len(v) for k, v in request["env"].items())
    return size * 6 < MAX_REQUEST_BYTES  # JSON escapes a character in at most 6 bytes


def note(message: str) -> None:
    try:
        sys.stderr.write(f"pdiff: note: {message}; running in this process\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class _Signals:
    """Signals that arrive while the server runs the request, written to a pipe that select() watches."""

    def __init__(self):
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)
        self.previous = {}
        self.wakeup = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for signum in FORWARDED_SIGNALS:
            self.previous[signum] = signal.signal(signum, lambda *_: None)

    def pending(self) -> list[int]:
        try:
            return list(os.read(self.read_fd, 64))
        except BlockingIOError:
            return []

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self.wakeup)
        os.close(self.read_fd)
        os.close(self.write_fd)


def _die_like(code: int) -> int:
    """Exit as the server's child did: its status, or by the signal that ended it."""
    if code >= 0:
        return code
    signum = -code
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum


def run_via_server(argv: list[str], sock: socket.socket) -> int | None:
    """Send the call on `sock`: its exit status; None when it must run in-process (it was refused, or the
    server wants to restart: 'restart'); ServerUnusable when the server failed."""
    try:
        cwd_fd = os.open(".", getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        cwd_fd = -1
    try:
        request = _request(argv, cwd_fd)
        if not _within_bounds(request):
            return None
        fds = [0, 1, 2] + ([cwd_fd] if cwd_fd >= 0 else [])
        for fd in (0, 1, 2):
            os.fstat(fd)  # a closed standard stream cannot be passed: OSError, in-process
        send_request(sock, request, fds)
    except OSError as exc:
        raise ServerUnusable(f"could not send the request ({exc.strerror or exc})") from None
    finally:
        if cwd_fd >= 0:
            os.close(cwd_fd)
    frames = Frames(sock)
    reply = frames.wait(ACCEPT_SECONDS)
    if reply is None:
        raise ServerUnusable("the server did not take the request" if not frames.closed
                             else "the server closed the connection")
    kind, payload = reply
    if kind == "R":
        return "restart"
    if kind == "E":
        return None
    if kind == "X":  # the child ended before the server said it had the request (a quick error): both are true
        return _die_like(json.loads(payload))
    if kind != "A":
        raise ServerUnusable(f"unexpected reply {kind!r}")
    signals = _Signals()
    try:
        cancel_deadline, cancel_signal = None, None
        while True:
            timeout = None if cancel_deadline is None else max(0.0, cancel_deadline - time.monotonic())
            reply = frames.wait(timeout, extra=(signals.read_fd,))
            if reply is None and frames.closed:
                raise ServerUnusable("the server lost the request")
            if reply is None:  # the request did not end after a forwarded signal: cancel it
                sock.close()
                return _cancelled(cancel_signal)
            kind, payload = reply
            if kind == "X":
                return _die_like(json.loads(payload))
            if kind == "wake":
                for signum in signals.pending():
                    if signum in FORWARDED_SIGNALS:
                        try:
                            sock.sendall(FRAME.pack(b"S", 1) + bytes([signum]))
                        except OSError:
                            pass
                        if cancel_deadline is None:
                            cancel_deadline, cancel_signal = time.monotonic() + CANCEL_SECONDS, signum
    finally:
        signals.restore()


def _cancelled(signum: int) -> int:
    """The request did not end after a forwarded signal: it is abandoned (the server kills it) and this client
    ends as the in-process run would have: 'interrupted' and 130 for Ctrl-C, by the signal otherwise."""
    if signum == signal.SIGINT:
        try:
            sys.stderr.write("pdiff: interrupted\n")
        except OSError:
            pass
        return 130
    return _die_like(-signum)


def _in_process() -> None:
    from pdiff.cli import run

    run()


def main() -> None:
    """Console-script entry point (`pdiff`, `python -m pdiff`)."""
    argv = sys.argv[1:]
    mode = _mode()
    if mode == "off" or _routed_in_process(argv):
        return _in_process()
    status = None
    try:
        path = socket_path()
        for attempt in range(2):
            sock = connect(path) if os.path.isdir(runtime_dir()) else None
            if sock is None:
                if mode == "on" and os.environ.get(COMPLETION_VARIABLE) and not _recently_failed(path):
                    _start_in_background(path)  # this Tab is answered here; the next ones by the server
                if mode != "on" or _light(argv) or _recently_failed(path):
                    return _in_process()
                private_dir(create=True)
                try:
                    sock = start_server(path)
                except ServerUnusable:
                    _record_failure(path)
                    raise
            with sock:
                status = run_via_server(argv, sock)
            if status != "restart":
                break
            status = None
    except ServerUnusable as exc:
        note(str(exc))
    except OSError as exc:
        note(f"the server could not be used ({exc.strerror or exc})")
    if status is None:
        return _in_process()
    sys.exit(status)
