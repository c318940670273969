"""A training with a wall-clock budget (tts.sh --scratch_baseline, the quality race): stopped at the
deadline, its last whole epochs averaged as ESPnet ends a training."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from espnet2_glow_wavegan.recipe.timed_training import average_last_epochs


def test_a_budget_stop_averages_the_last_whole_epochs(tmp_path):
    """The last three readable epochs are averaged (a checkpoint cut short is skipped), integer tensors come from
    the newest, and ESPnet's model name points at the average."""
    for epoch in range(1, 6):
        torch.save({"w": torch.full((2,), float(epoch)), "steps": torch.tensor(epoch)}, tmp_path / f"{epoch}epoch.pth")
    (tmp_path / "6epoch.pth").write_bytes(b"cut short")
    assert average_last_epochs(tmp_path) == [3, 4, 5]
    average = torch.load(tmp_path / "train.total_count.ave.pth", weights_only=True)
    assert torch.equal(average["w"], torch.full((2,), 4.0)) and average["steps"].item() == 5
    assert (tmp_path / "train.total_count.ave.pth").readlink().name == "train.total_count.ave_3best.pth"
    empty = tmp_path / "none"
    empty.mkdir()
    (empty / "1epoch.pth").write_bytes(b"cut short")
    with pytest.raises(RuntimeError, match="no epoch finished within the budget"):
        average_last_epochs(empty)


# A stand-in training job: saves an epoch, then a child process (as ESPnet's launcher starts the trainer)
# saves another and would run on for a minute.
TRAINING = """
import subprocess, sys, time, torch
out = sys.argv[1]
torch.save({"w": torch.tensor([1.0])}, out + "/1epoch.pth")
child = "import sys, time, torch; torch.save({'w': torch.tensor([3.0])}, sys.argv[1] + '/2epoch.pth'); time.sleep(60)"
open(out + "/child.pid", "w").write(str(subprocess.Popen([sys.executable, "-c", child, out]).pid))
time.sleep(60)
"""


def timed(exp_dir, seconds, *command):
    return subprocess.run([sys.executable, "-m", "espnet2_glow_wavegan.recipe.timed_training", "--seconds",
                           str(seconds), "--exp_dir", str(exp_dir), "--", *command], capture_output=True, text=True,
                          timeout=120)


def test_the_deadline_stops_the_whole_job_and_averages_what_it_saved(tmp_path):
    proc = timed(tmp_path, 8, sys.executable, "-c", TRAINING, str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "timed_training.json").read_text())
    assert record["stopped_at_deadline"] and record["averaged_epochs"] == [1, 2]
    assert 8 <= record["seconds"] < 60
    assert torch.load(tmp_path / "train.total_count.ave.pth", weights_only=True)["w"].item() == 2.0
    # the trainer's own child is gone too (or a zombie): nothing writes into the experiment any more
    status = Path(f"/proc/{(tmp_path / 'child.pid').read_text()}/status")
    assert not status.exists() or "State:\tZ" in status.read_text()


def test_a_job_that_ends_by_itself_or_fails_keeps_its_own_ending(tmp_path):
    done = timed(tmp_path / "done", 60, sys.executable, "-c", "pass")
    assert done.returncode == 0 and "finished by itself" in done.stderr
    assert not json.loads((tmp_path / "done/timed_training.json").read_text())["stopped_at_deadline"]
    assert not (tmp_path / "done/train.total_count.ave.pth").exists()
    assert timed(tmp_path / "failed", 60, sys.executable, "-c", "raise SystemExit(7)").returncode == 7
    early = timed(tmp_path, 1, sys.executable, "-c", "import time; time.sleep(60)")
    assert early.returncode == 3 and "ended before the first epoch was saved" in early.stderr
