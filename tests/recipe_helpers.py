"""What the recipe tests share: a scratch copy of a recipe, running it, reading its tables."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import yaml

from conftest import REPO

DECODE = "exp/tts_glow_wavegan_tiny/decode_train.total_count.ave"


def recipe_copy(root: Path, name: str) -> Path:
    """egs2/<name>/tts1 laid out as in the project, without any earlier outputs."""
    (root / "egs2").mkdir(parents=True, exist_ok=True)
    os.symlink(REPO / "egs2" / "TEMPLATE", root / "egs2" / "TEMPLATE")
    os.symlink(REPO / "corpora", root / "corpora")
    os.symlink((REPO / ".venv").resolve(), root / ".venv")
    shutil.copytree(
        REPO / "egs2" / name / "tts1", root / "egs2" / name / "tts1", symlinks=True,
        ignore=shutil.ignore_patterns("data", "dump", "exp"),
    )
    return root / "egs2" / name / "tts1"


def run(recipe: Path, *args, check=True, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(env_extra or {})
    proc = subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=1500)
    if check and proc.returncode != 0:
        raise AssertionError(f"run.sh {args} failed ({proc.returncode}):\n{proc.stderr[-5000:]}")
    return proc


def table(path: Path):
    return [line.split(maxsplit=1) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_consistent_data_dir(d: Path):
    keys = None
    for name in ("wav.scp", "text", "utt2spk"):
        ids = [row[0] for row in table(d / name)]
        assert ids == sorted(ids), f"{d / name} is not sorted"
        assert keys is None or ids == keys, f"{d / name} has other utterances than wav.scp"
        keys = ids
    spk2utt = {row[0]: row[1].split() for row in table(d / "spk2utt")}
    assert sorted(u for utts in spk2utt.values() for u in utts) == keys
    return keys


def check_paper_ablation(recipe: Path, test_set: str, train_set: str):
    """--paper_ablation: inner-GAN (mel vocoder) and Glow-TTS + inner-GAN beside the main system."""
    import json

    result = json.loads((recipe / "RESULTS_paper.json").read_text())
    assert result["test_set"] == test_set
    assert [r["system"] for r in result["reconstruction"]] == ["inner-GAN (mel)", "WaveGAN (z)"]
    assert [r["system"] for r in result["tts"]] == ["Glow-TTS + inner-GAN (mel)", "Glow-WaveGAN (z)"]
    n_test = len(table(recipe / "dump/raw" / test_set / "wav.scp"))
    for row in result["reconstruction"] + result["tts"]:
        assert row["num_utts"] == n_test
        assert all(np.isfinite(row[k]) for k in ("mcd", "vuv_error", "rtf")), row
        # NaN only where the tiny model voiced no frame that the recording voices
        assert not np.isinf(row["log_f0_rmse"]), row
    for row in result["reconstruction"]:  # copy synthesis keeps the length of the recording
        assert abs(row["duration_ratio"] - 1.0) < 1e-3, row
    text = (recipe / "RESULTS_paper.md").read_text()
    assert "### Reconstruction" in text and "### Text to speech" in text and "| Glow-WaveGAN (z) |" in text
    config = yaml.safe_load((recipe / "exp/tts_inner_gan_tiny/config.yaml").read_text())
    assert config["tts_conf"]["generator_params"]["encoder"]["type"] == "mel"
    assert (recipe / "dump/latents/inner_gan_tiny" / train_set / "stats.scp").exists()  # the prior over the mel trained from stored mels, like the main one
