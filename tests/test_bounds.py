"""Bounded workers (pdiff/bounds.py): one-shot workers, and the resident workers a `pdiff shell` session keeps.

The oracle is the operating system: process ids say whether a job ran in a fresh process or a resident one, and
/proc says whether a stopped worker is gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pdiff import bounds

ROOT = Path(__file__).resolve().parents[1]
_KEPT: list = []  # memory a job keeps in its worker (to make a resident grow)


# jobs: module-level generator functions, so a resident receives them by reference (pickle)
def whoami(tag):
    yield (tag, os.getpid())


def forever():
    while True:
        time.sleep(0.01)
        yield from ()


def exhaust_memory():
    yield ("start", os.getpid())
    hog = []
    while True:
        hog.append(bytearray(1 << 20))


def grow(megabytes):
    _KEPT.append(bytearray(megabytes << 20))
    yield ("grew", os.getpid())


def fails():
    yield ("start", os.getpid())
    raise ValueError("a bug")


def _deadline(seconds: float = 20.0) -> float:
    return time.monotonic() + seconds


def _gone(pid: int) -> bool:
    """The process has ended (reaped, or a zombie waiting to be)."""
    bounds.reap_finished()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if _gone(pid):
            return True
        time.sleep(0.02)
    return False


def _pid_of(outcome) -> int:
    return outcome.messages[0][1]


def test_outside_a_session_every_call_forks_its_own_worker():
    first = bounds.start(whoami, "a").collect(_deadline())
    second = bounds.start(whoami, "b").collect(_deadline())
    assert first.finished and second.finished
    assert first.messages[0][0] == "a" and second.messages[0][0] == "b"
    assert len({_pid_of(first), _pid_of(second), os.getpid()}) == 3
    assert _wait_gone(_pid_of(first)) and _wait_gone(_pid_of(second))


def test_a_resident_serves_one_job_after_another_and_ends_with_the_session():
    with bounds.resident_workers():
        outcomes = [bounds.start(whoami, i).collect(_deadline()) for i in range(5)]
        assert all(o.finished and not o.error for o in outcomes)
        assert [o.messages[0][0] for o in outcomes] == list(range(5))  # each job's own messages, in order
        pids = {_pid_of(o) for o in outcomes}
        assert len(pids) == 1 and os.getpid() not in pids
        (resident,) = pids
        assert not _gone(resident)  # waiting for the next job
    assert _wait_gone(resident)  # the session ended: so did its worker


def test_two_jobs_at_once_use_two_residents_and_a_third_gets_a_worker_of_its_own():
    with bounds.resident_workers():
        jobs = [bounds.start(whoami, i) for i in range(bounds.RESIDENT_POOL + 1)]
        pids = [_pid_of(job.collect(_deadline())) for job in jobs]
        assert len(set(pids)) == len(pids)
        again = [_pid_of(bounds.start(whoami, i).collect(_deadline())) for i in range(2)]
        assert set(again) <= set(pids[:bounds.RESIDENT_POOL])  # the residents again, not a fresh fork
        assert _wait_gone(pids[-1])  # the one-shot worker ended with its job


def test_a_job_past_its_deadline_takes_its_resident_down_and_the_next_job_gets_a_fresh_one():
    with bounds.resident_workers():
        first = _pid_of(bounds.start(whoami, 0).collect(_deadline()))
        start = time.monotonic()
        outcome = bounds.start(forever).collect(time.monotonic() + 0.3)
        assert outcome.timed_out and not outcome.finished
        assert time.monotonic() - start < 2
        assert _wait_gone(first)
        after = bounds.start(whoami, 1).collect(_deadline())
        assert after.finished and _pid_of(after) != first


@pytest.mark.parametrize("job, message", [(exhaust_memory, "ran out of memory (limit 64 MB)"),
                                          (fails, "ValueError: a bug")])
def test_a_failing_job_is_reported_and_its_resident_replaced(job, message):
    with bounds.resident_workers():
        outcome = bounds.start(job, memory_mb=64).collect(_deadline())
        assert outcome.error == message and not outcome.finished
        broken = _pid_of(outcome)
        assert _wait_gone(broken)
        after = bounds.start(whoami, 1, memory_mb=64).collect(_deadline())
        assert after.finished and not after.error and _pid_of(after) != broken


def test_a_resident_retires_after_its_memory_has_grown_by_half_its_limit():
    with bounds.resident_workers():
        small = bounds.start(grow, 1, memory_mb=64).collect(_deadline())
        assert _pid_of(bounds.start(whoami, 0, memory_mb=64).collect(_deadline())) == _pid_of(small)
        big = bounds.start(grow, 40, memory_mb=64).collect(_deadline())
        assert big.finished and not big.error  # the job itself is answered
        assert _wait_gone(_pid_of(big))  # and then its worker steps down
        assert _pid_of(bounds.start(whoami, 1, memory_mb=64).collect(_deadline())) != _pid_of(big)


def test_a_resident_killed_between_jobs_is_replaced_without_sigpipe_ending_the_session():
    """The CLI restores SIGPIPE's default action: a job written to a dead resident would end the process."""
    script = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from pdiff import bounds\n"
        "from test_bounds import whoami\n"
        "with bounds.resident_workers():\n"
        "    first = bounds.start(whoami, 0).collect(time.monotonic() + 20).messages[0][1]\n"
        "    os.kill(first, signal.SIGKILL)\n"
        "    time.sleep(0.2)\n"
        "    after = bounds.start(whoami, 1).collect(time.monotonic() + 20)\n"
        "    print(first, after.messages[0][1], after.finished)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    first, second, finished = done.stdout.split()
    assert first != second and finished == "True"


def test_a_job_nobody_collects_is_stopped_between_questions():
    """The shell calls stop_unfinished() after each line: a line interrupted midway cannot hold a resident."""
    with bounds.resident_workers():
        abandoned = bounds.start(forever)
        busy = abandoned.pid
        bounds.stop_unfinished()
        assert _wait_gone(busy)
        after = bounds.start(whoami, 1).collect(_deadline())
        assert after.finished and _pid_of(after) != busy
        idle = _pid_of(after)
        bounds.stop_unfinished()  # an idle resident is kept
        assert _pid_of(bounds.start(whoami, 2).collect(_deadline())) == idle
