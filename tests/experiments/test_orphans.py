"""Workers die with their parent: a ``compare --workers 2`` killed with SIGKILL left its pool
workers (hundreds of MB each) alive for minutes; now none outlives it by 10 seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sim.experiments.executors import WATCHDOG_SECONDS, die_with_parent

ROOT = Path(__file__).resolve().parents[2]
BASELINE = str(ROOT / "scenarios" / "baseline.yaml")
AGGRESSIVE = str(ROOT / "scenarios" / "aggressive.yaml")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _workers(parent: psutil.Process, n: int, timeout: float = 60.0) -> list[psutil.Process]:
    """The parent's ``n`` pool workers, once they are running (the spawn helper excluded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = [k for k in parent.children() if "resource_tracker" not in " ".join(k.cmdline())]
        if len(kids) >= n:
            return kids
        time.sleep(0.2)
    pytest.fail(f"the compare did not start {n} workers in {timeout:.0f} s")


def _alive(procs: list[psutil.Process]) -> list[int]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_kill_9_of_a_two_worker_compare_leaves_no_worker_alive(tmp_path):
    cmd = [sys.executable, "-m", "sim", "compare", BASELINE, AGGRESSIVE, "--reps", "4",
           "--users", "30000", "--quarters", "4", "--workers", "2", "--quiet", "--no-report",
           "--out", str(tmp_path / "cmp")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        workers = _workers(psutil.Process(proc.pid), 2)
        time.sleep(1.0)  # the workers are inside their first runs
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while _alive(workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = _alive(workers)
        for pid in alive:  # never leave them behind, whatever the outcome
            os.kill(pid, signal.SIGKILL)
        assert not alive, f"workers {alive} outlived their killed parent by 10 s"
        assert not (tmp_path / "cmp").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_watchdog_ends_a_child_whose_parent_died():
    """The portable fallback alone (no prctl): a grandchild notices its parent is gone."""
    code = (
        "import os, sys, time\n"
        "from sim.experiments import executors\n"
        "executors.sys.platform = 'other'  # no prctl: the watchdog alone\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    executors.die_with_parent()\n"
        "    print(os.getpid(), flush=True)\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)\n"
        "os._exit(0)  # the parent dies first\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    child = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5 * WATCHDOG_SECONDS + 2
    while psutil.pid_exists(child) and time.monotonic() < deadline:
        try:
            if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    alive = psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive


def test_a_worker_whose_parent_is_already_gone_exits_at_once():
    code = ("import os\nfrom sim.experiments.executors import die_with_parent\n"
            "die_with_parent(parent=1 if os.getppid() != 1 else 2)\nprint('survived')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and "survived" not in out.stdout
    assert callable(die_with_parent)
