"""Time and memory bounds around work that can blow up (SymPy above all).

Signals reach only the main thread and cannot stop a C loop, so unbounded work runs in a forked worker process
with an address-space limit; the parent reads its messages as they come and kills it at the deadline, keeping
whatever finished. Inside the worker, SIGALRM bounds optional steps (simplify) more tightly.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import pickle
import resource
import select
import signal
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from pdiff.errors import ExitCode, PdiffError

DEFAULT_TIMEOUT = 20.0
DEFAULT_MEMORY_MB = 2048  # address space a worker may add to what it inherits
PROCESS_MEMORY_MB = 6144  # address space the CLI process may add for autograd (PDIFF_MEMORY_MB; 0 lifts it)


class ResourceError(PdiffError):
    """The computation needed more memory than pdiff allows."""

    exit_code = ExitCode.MATH


def limit_process_memory() -> None:
    """Cap this process's address space, so an autograd graph that grows with the order (3-4x per order) fails
    with a clear error instead of taking the machine. Not where a GPU driver is present: CUDA reserves huge
    virtual ranges and would fail under the cap (its own memory is bounded by the device)."""
    extra = int(os.environ.get("PDIFF_MEMORY_MB", PROCESS_MEMORY_MB))
    if extra <= 0 or os.path.exists("/dev/nvidiactl") or not os.path.exists("/proc/self/statm"):
        return
    limit = _virtual_memory_bytes() + extra * 2**20
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
MAX_WAIT_SLICE = 1.0  # seconds; the parent waits for worker messages in slices of at most this
RESIDENT_POOL = 2  # resident workers a session keeps (`pdiff check` runs two judges at once)


@dataclass
class WorkerOutcome:
    """What a bounded worker produced: its messages, and why it stopped."""

    messages: list = field(default_factory=list)
    finished: bool = False  # the work ran to its end
    timed_out: bool = False
    error: str | None = None  # a failure inside the worker (memory exhausted, a bug)


@contextlib.contextmanager
def alarm(seconds: float):
    """Raise TimeoutError in the main thread after `seconds` (interrupts pure-Python work only)."""
    if seconds <= 0:
        raise TimeoutError()

    def _ring(_signum, _frame):
        raise TimeoutError()

    previous = signal.signal(signal.SIGALRM, _ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _virtual_memory_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _send(fd: int, message) -> None:
    data = pickle.dumps(message)
    payload = struct.pack("!I", len(data)) + data
    while payload:
        payload = payload[os.write(fd, payload):]


def _receive(fd: int):
    """One message written by _send, or None at end of file."""
    def exactly(size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = os.read(fd, size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    header = exactly(4)
    data = header and exactly(struct.unpack("!I", header)[0])
    return None if data is None else pickle.loads(data)  # written by our own parent process, never user data


def _die_with_parent(parent: int) -> None:
    """End this worker when the process that forked it dies, even by SIGKILL (`timeout -s KILL pdiff ...`, the
    OOM killer): otherwise an orphaned worker goes on burning a core on a SymPy blow-up with no deadline at all."""
    try:  # Linux: the kernel sends SIGKILL when the parent exits
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:  # elsewhere (and as a second line): notice re-parenting; SymPy is Python, so this runs
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(3)

    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(3)
    threading.Thread(target=watch, name="pdiff-parent-watch", daemon=True).start()


def _child(write_fd: int, job_fd: int | None, work: Callable[[], Iterator] | None, memory_mb: int,
           parent: int) -> None:
    """The worker: run `work`, or (resident) each job (function, args) read from `job_fd` until end of file."""
    # the inherited heap (torch, SymPy's caches) is never garbage here: a collection walking it would copy every
    # page on write, ~170 ms per worker after a few calls; frozen objects are skipped by the collector
    gc.freeze()
    try:
        _die_with_parent(parent)
        start = _virtual_memory_bytes()
        limit = start + memory_mb * 2**20
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)  # a process cannot raise its hard limit (ValueError): keep the tighter one
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # hard too: nothing in the worker can lift it
        while True:
            if work is None:
                job = _receive(job_fd)
                if job is None:  # the parent closed the pipe: the session is over
                    return
                function, args = job
                work = functools.partial(function, *args)
            for message in work():
                _send(write_fd, ("item", message))
            # a resident retires once its caches have taken half its memory, before a job can fail for lack of it
            retire = job_fd is None or _virtual_memory_bytes() - start > memory_mb * 2**19
            _send(write_fd, ("done", retire))
            if retire:
                return
            work = None
    except MemoryError:
        _send(write_fd, ("error", f"ran out of memory (limit {memory_mb} MB)"))
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent as a message
        _send(write_fd, ("error", f"{type(exc).__name__}: {exc}"[:300]))


class _Reader:
    def __init__(self, fd: int):
        self.fd, self.buffer = fd, b""

    def feed(self) -> bool:
        chunk = os.read(self.fd, 1 << 16)
        self.buffer += chunk
        return bool(chunk)

    def messages(self) -> Iterator:
        while len(self.buffer) >= 4:
            (size,) = struct.unpack("!I", self.buffer[:4])
            if len(self.buffer) < 4 + size:
                return
            data, self.buffer = self.buffer[4:4 + size], self.buffer[4 + size:]
            yield pickle.loads(data)  # written by our own child process, never user data


class BoundedWorker:
    """A forked process running work under a memory limit; collect() gathers its messages until a deadline.

    One-shot (`work` given): it runs `work` (a generator function) and ends. Resident (`work` None): it waits for
    jobs sent by submit() and serves them one at a time, so a session pays the fork and the copy-on-write of the
    inherited heap once instead of per question; a job that times out or fails takes its worker with it.
    """

    def __init__(self, work: Callable[[], Iterator] | None = None, memory_mb: int = DEFAULT_MEMORY_MB):
        read_fd, write_fd = os.pipe()
        job_read, self.job_fd = os.pipe() if work is None else (None, None)
        parent = os.getpid()
        self.memory_mb = memory_mb
        self.pid = os.fork()
        if self.pid == 0:  # the worker
            os.close(read_fd)
            if self.job_fd is not None:
                os.close(self.job_fd)
            try:
                _child(write_fd, job_read, work, memory_mb, parent)
            finally:
                os._exit(0)
        os.close(write_fd)
        if job_read is not None:
            os.close(job_read)
        self.reader = _Reader(read_fd)
        self.outcome = WorkerOutcome()
        self.busy = work is not None  # a resident is idle until it is given a job

    def submit(self, function: Callable[..., Iterator], args: tuple) -> BoundedWorker:
        """Give an idle resident the job `function(*args)` (both picklable); collect() gathers what it yields."""
        self.outcome, self.busy = WorkerOutcome(), True
        try:
            _send(self.job_fd, (function, args))
        except OSError:  # the worker is gone (killed from outside): collect() reports it stopped
            pass
        return self

    def collect(self, deadline: float) -> WorkerOutcome:
        """Read messages until the work ends or `deadline` (time.monotonic()) passes. A worker whose work did not
        finish, or that is not resident, is stopped; a resident that finished waits for its next job."""
        outcome = self.outcome
        keep = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    outcome.timed_out = True
                    break
                # wait in slices: select() overflows on huge timeouts (--timeout 1e308, inf)
                ready, _, _ = select.select([self.reader.fd], [], [], min(remaining, MAX_WAIT_SLICE))
                if not ready:
                    continue
                open_ = self.reader.feed()
                ended = False
                for kind, payload in self.reader.messages():
                    if kind == "item":
                        outcome.messages.append(payload)
                    elif kind == "done":
                        outcome.finished = ended = True
                        keep = self.job_fd is not None and not payload
                    else:
                        outcome.error, ended = payload, True
                if ended:
                    break
                if not open_:
                    outcome.error = outcome.error or "the symbolic worker stopped unexpectedly"
                    break
        finally:
            if keep:
                self.busy = False
            else:
                self.close()
        return outcome

    def ready(self) -> bool:
        """An idle resident still there to take a job. One that died between jobs (killed from outside) has closed
        its end of the pipe, which reads as end of file: it is stopped here, before a job write could raise
        SIGPIPE (the CLI restores its default action, which ends the process)."""
        if not self.pid or self.busy:
            return False
        if select.select([self.reader.fd], [], [], 0)[0]:
            self.close()
            return False
        return True

    def close(self) -> None:
        """Stop the worker. It is reaped later, without blocking: tearing down a forked copy of a process that has
        torch loaded takes ~15 ms, which a `pdiff shell` question need not wait for."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.close(self.reader.fd)
            if self.job_fd is not None:
                os.close(self.job_fd)
            _UNREAPED.append(self.pid)
            self.pid = 0
        reap_finished()


_UNREAPED: list[int] = []  # stopped workers not yet reaped
_RESIDENTS: list[BoundedWorker] | None = None  # a session's resident workers; None outside a session


def start(function: Callable[..., Iterator], *args, memory_mb: int = DEFAULT_MEMORY_MB) -> BoundedWorker:
    """Run `function(*args)` (a generator of messages) in a bounded worker: an idle resident of the session when
    there is one (see keep_resident_workers), else a worker forked for this call alone."""
    if _RESIDENTS is not None:
        idle = [worker for worker in _RESIDENTS if worker.memory_mb == memory_mb and worker.ready()]
        _RESIDENTS[:] = [worker for worker in _RESIDENTS if worker.pid]
        if idle:
            return idle[0].submit(function, args)
        if len(_RESIDENTS) < RESIDENT_POOL:
            worker = BoundedWorker(None, memory_mb)
            _RESIDENTS.append(worker)
            return worker.submit(function, args)
    return BoundedWorker(lambda: function(*args), memory_mb)


def stop_unfinished() -> None:
    """Stop residents still busy with a job nobody will collect (its caller was interrupted): called between a
    session's questions, where no job can be in flight, so an abandoned job cannot hold a resident for good."""
    for worker in _RESIDENTS or ():
        if worker.busy:
            worker.close()


@contextlib.contextmanager
def resident_workers():
    """Within the block, bounded work goes to resident workers kept between calls (`pdiff shell`)."""
    global _RESIDENTS
    previous, _RESIDENTS = _RESIDENTS, []
    try:
        yield
    finally:
        for worker in _RESIDENTS:
            worker.close()
        _RESIDENTS = previous


def reap_finished(block: bool = False) -> None:
    """Reap stopped workers that have exited (all of them, waiting, with block=True)."""
    for pid in list(_UNREAPED):
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _UNREAPED.remove(pid)
