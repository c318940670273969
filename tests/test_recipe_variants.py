"""Recipe runs beside the two main ones: a user's half-written data dir, the wheel.

(The iSTFT decoder runs through the whole recipe in the AISHELL-3 test.)
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from recipe_helpers import recipe_copy, run

# Stock ESPnet entry points in subprocesses: minutes (deselect with -m 'not slow').
pytestmark = pytest.mark.slow


def test_half_written_data_dir_is_not_overwritten(tmp_path):
    recipe = recipe_copy(tmp_path, "ljspeech")
    (recipe / "data").mkdir()
    (recipe / "data" / "mine.txt").write_text("user data")
    proc = run(recipe, "--stop_stage", "1", check=False)
    assert proc.returncode != 0 and "data/ exists but is incomplete" in proc.stderr
    assert (recipe / "data" / "mine.txt").read_text() == "user data"


def test_a_built_wheel_installs_and_registers_in_a_fresh_virtualenv(tmp_path):
    """No PyPI package: the README says build a wheel; that wheel must work on its own."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True)
    wheel = next(dist.glob("espnet2_glow_wavegan-*.whl"))
    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    # The dependencies (torch, espnet, ...) from the project environment, offline; a path added by a
    # .pth line does not run that folder's own .pth files, so the editable install stays out.
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "espnet2").is_dir())
    (site / "project_dependencies.pth").write_text(f"{deps}\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True, capture_output=True)
    check = ("import sys, espnet2_glow_wavegan, espnet2.tasks.gan_tts as t; "
             "assert 'glow_wavegan' in t.tts_choices.classes and 'wavegan_vae' in t.tts_choices.classes; "
             "print(espnet2_glow_wavegan.__file__)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",) and not k.startswith("PYTEST")}
    proc = subprocess.run([str(venv / "bin/python"), "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1].startswith(str(site))  # the wheel's copy, registered by its own start-up hook
