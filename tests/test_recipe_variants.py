"""Recipe runs beside the two main ones: a user's half-written data dir, the iSTFT decoder, the wheel."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO
from recipe_helpers import recipe_copy, run, table

# Stock ESPnet entry points in subprocesses: minutes (deselect with -m 'not slow').
pytestmark = pytest.mark.slow


def test_half_written_data_dir_is_not_overwritten(tmp_path):
    recipe = recipe_copy(tmp_path, "ljspeech")
    (recipe / "data").mkdir()
    (recipe / "data" / "mine.txt").write_text("user data")
    proc = run(recipe, "--stop_stage", "1", check=False)
    assert proc.returncode != 0 and "data/ exists but is incomplete" in proc.stderr
    assert (recipe / "data" / "mine.txt").read_text() == "user data"


def test_ljspeech_recipe_with_the_istft_decoder_packs_a_model_text2speech_runs(tmp_path, python_run):
    recipe = recipe_copy(tmp_path / "istft", "ljspeech")
    run(recipe, "--decoder", "istft", "--stop_stage", "10")
    exp = recipe / "exp/tts_glow_wavegan_istft_tiny"
    packed = exp / "tts_glow_wavegan_istft_tiny_train.total_count.ave.zip"
    assert (recipe / "exp/tts_wavegan_vae_istft_tiny/.done").exists() and packed.exists()
    assert len(table(exp / "decode_train.total_count.ave/eval1/wav/wav.scp")) == 4
    script = textwrap.dedent(
        f"""
        import json
        from espnet2.bin.tts_inference import Text2Speech
        from espnet2.main_funcs.pack_funcs import unpack
        t2s = Text2Speech.from_pretrained(**unpack("{packed}", "{tmp_path / 'unpacked'}"))
        out = t2s("Hello from the inverse STFT.")
        print(json.dumps({{"decoder": t2s.tts.generator.wavegan.decoder_type, "n": out["wav"].numel(),
                          "frames": int(out["duration"].sum())}}))
        """
    )
    import json

    out = json.loads(python_run(["-c", script]).stdout.strip().splitlines()[-1])
    assert out["decoder"] == "istft" and out["n"] == out["frames"] * 256 > 0


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
