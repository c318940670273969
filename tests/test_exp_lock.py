"""One run at a time in an experiment directory (egs2/TEMPLATE/tts1/utils/exp_lock.sh, sourced by tts.sh)."""

import socket
import subprocess
import time

from conftest import REPO

LOCK_LIB = REPO / "egs2/TEMPLATE/tts1/utils/exp_lock.sh"


def locker(exp, *then):
    """A bash run that takes the lock of ``exp``, then runs ``then``."""
    script = f"set -euo pipefail; . {LOCK_LIB}; exp_lock {exp}; " + "; ".join(then or ["true"])
    return ["bash", "-c", script]


def test_a_second_run_stops_at_once_naming_the_first(tmp_path):
    exp = tmp_path / "exp/tts_x"
    first = subprocess.Popen(locker(exp, "sleep 30"))
    try:
        for _ in range(100):
            if (exp / ".lock").is_file() and (exp / ".lock").read_text().strip():
                break
            time.sleep(0.05)
        assert (exp / ".lock").read_text().split() == [str(first.pid), socket.gethostname()]
        second = subprocess.run(locker(exp, "echo trained"), capture_output=True, text=True, timeout=30)
        assert second.returncode == 1 and "trained" not in second.stdout
        assert f"{exp} is in use by process {first.pid} on {socket.gethostname()}" in second.stderr
        assert f"delete {exp}/.lock" in second.stderr
        assert (exp / ".lock").read_text().split()[0] == str(first.pid)  # the first run's lock is left alone
    finally:
        first.terminate()
        first.wait()
    assert not (exp / ".lock").exists()  # released when the holder ends (TERM included)


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    exp = tmp_path / "exp/tts_x"
    killed = subprocess.Popen(locker(exp, "sleep 30"))
    for _ in range(100):
        if (exp / ".lock").is_file() and (exp / ".lock").read_text().strip():
            break
        time.sleep(0.05)
    killed.kill()  # kill -9: no exit trap, the lock stays behind
    killed.wait()
    assert (exp / ".lock").read_text().split()[0] == str(killed.pid)
    rerun = subprocess.run(locker(exp, f"cat {exp}/.lock"), capture_output=True, text=True, timeout=30)
    assert rerun.returncode == 0
    assert f"taking over the lock of process {killed.pid}, which is gone" in rerun.stderr
    assert rerun.stdout.split()[1] == socket.gethostname() and rerun.stdout.split()[0] != str(killed.pid)
    assert not (exp / ".lock").exists()


def test_unlock_releases_only_its_own_lock(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    proc = subprocess.run(locker(a, f"exp_lock {b}", f"exp_unlock {a}", f"test ! -e {a}/.lock", f"test -e {b}/.lock"),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert not (b / ".lock").exists()  # released at exit
