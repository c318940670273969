"""Shared fixtures: paths of the bundled corpora and a Python that runs like a user's."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO / "corpora"


def run_python(args, cwd, env_extra=None, timeout=600, check=True):
    """Run the project's interpreter in a clean subprocess, as a user would.

    The working directory is outside the checkout so that nothing is importable
    by accident; only the installed package (and its start-up hook) counts.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("PYTHONPATH", None)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture
def python_run(tmp_path):
    def _run(args, **kw):
        kw.setdefault("cwd", tmp_path)
        return run_python(args, **kw)

    return _run
