"""Training: numerically safe on silence, resumes after a kill, runs under 2-process DDP (gloo, CPU)."""

import os
import signal
import socket
import subprocess
import sys
import time
import zipfile

import pytest
import torch

from conftest import LJ_CONF, data_args, run_python
from test_glow_wavegan import tiny_glow
from test_wavegan import tiny_model


def test_kl_and_flow_terms_stay_finite_on_silence_and_long_input():
    torch.manual_seed(0)
    vae = tiny_model()
    glow = tiny_glow()
    text = torch.randint(2, 20, (1, 40))
    for speech in (torch.zeros(1, 256 * 60), torch.randn(1, 256 * 3000) * 0.3):  # silence; 35 s
        lengths = torch.tensor([speech.size(1)])
        out = vae(text=text, text_lengths=torch.tensor([40]), speech=speech, speech_lengths=lengths)
        assert torch.isfinite(out["loss"]).all(), out["stats"]
        out = glow(text=text, text_lengths=torch.tensor([40]), speech=speech, speech_lengths=lengths)
        assert torch.isfinite(out["loss"]).all(), out["stats"]


def shape_args(root):
    args = []
    for split in ("train", "valid"):
        for name in ("text_shape", "speech_shape"):
            args += [f"--{split}_shape_file", str(root / "stats" / split / name)]
    return args


def train_cmd(root, config, output_dir, *extra):
    return [sys.executable, "-m", "espnet2.bin.gan_tts_train", "--config", str(config), "--use_preprocessor", "true",
            "--token_type", "char", "--token_list", str(root / "tokens.txt"), *data_args(root), *shape_args(root),
            "--output_dir", str(output_dir), "--resume", "true", *extra]


def complete_zip(path):
    """torch.save writes a zip; it is complete once its central directory reads."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def test_killed_training_resumes_and_matches_an_uninterrupted_run(lj_wavegan, tmp_path):
    root = lj_wavegan[0]
    config = LJ_CONF / "train_wavegan_vae_tiny.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    straight = tmp_path / "straight"
    subprocess.run(train_cmd(root, config, straight, "--max_epoch", "3"), cwd=root, env=env, check=True, capture_output=True)

    killed = tmp_path / "killed"
    cmd = train_cmd(root, config, killed, "--max_epoch", "3")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while not complete_zip(killed / "checkpoint.pth") and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # during epoch 2
    proc.wait()
    assert not (killed / "3epoch.pth").exists()
    resumed = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "1epoch results" not in resumed.stderr  # it did not start over
    a = torch.load(straight / "3epoch.pth", map_location="cpu")
    b = torch.load(killed / "3epoch.pth", map_location="cpu")
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].numel())
    # ESPnet reseeds every epoch, so the replayed epoch is the same computation.
    assert worst <= 1e-6, worst


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "config,extra",
    [
        ("train_wavegan_vae_tiny.yaml", []),
        ("train_glow_wavegan_tiny.yaml", ["--tts_conf", "training_phase=prior", "--tts_conf", "speech_input=waveform"]),
        ("train_glow_wavegan_tiny.yaml", ["--tts_conf", "training_phase=joint", "--tts_conf", "speech_input=waveform"]),
    ],
    ids=["wavegan_vae", "glow_prior", "glow_joint"],
)
def test_two_process_ddp_training(lj_wavegan, tmp_path, config, extra):
    root, wavegan_exp, _, _ = lj_wavegan
    out = tmp_path / "exp"
    if "glow" in config:
        extra = extra + ["--init_param", f"{wavegan_exp / '2epoch.pth'}:tts.generator:tts.generator.wavegan"]
    dist = ["--ngpu", "0", "--multiprocessing_distributed", "false", "--dist_world_size", "2",
            "--dist_backend", "gloo", "--dist_init_method", f"tcp://127.0.0.1:{free_port()}", "--max_epoch", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    procs = [
        subprocess.Popen(train_cmd(root, LJ_CONF / config, out, *dist, *extra, "--dist_rank", str(rank)),
                         cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for rank in (0, 1)
    ]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors[0][-3000:]
    assert (out / "1epoch.pth").exists()
    log = errors[0]
    assert "1epoch results" in log and "nan" not in log.split("1epoch results")[1].split("\n")[0].lower()
