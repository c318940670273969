"""Training: numerically safe on silence, resumes after a kill, runs under 2-process DDP (gloo, CPU)."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import LJ_CONF, data_args, tiny_glow_wavegan, tiny_wavegan_vae, wavegan_settings


def test_kl_and_flow_terms_stay_finite_on_silence_and_long_input():
    torch.manual_seed(0)
    vae = tiny_wavegan_vae()
    glow = tiny_glow_wavegan()
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


# The stock trainer, except that it blocks once the first checkpoint.pth is written, so the
# test kills it at that point and not at a moment that depends on the machine's speed.
STOPS_AFTER_FIRST_CHECKPOINT = """
import os, sys, time, torch
from espnet2.bin.gan_tts_train import main
save = torch.save
def save_then_block(obj, f, *args, **kwargs):
    save(obj, f, *args, **kwargs)
    if str(f).endswith("checkpoint.pth"):
        open(os.environ["CHECKPOINT_WRITTEN"], "w").close()
        time.sleep(600)
torch.save = save_then_block
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_killed_training_resumes_and_matches_an_uninterrupted_run(lj_wavegan, tmp_path):
    root = lj_wavegan[0]
    config = LJ_CONF / "train_wavegan_vae_tiny.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    straight = tmp_path / "straight"
    subprocess.run(train_cmd(root, config, straight, "--max_epoch", "3"), cwd=root, env=env, check=True, capture_output=True)

    killed, written = tmp_path / "killed", tmp_path / "checkpoint_written"
    cmd = train_cmd(root, config, killed, "--max_epoch", "3")
    blocking = [sys.executable, "-c", STOPS_AFTER_FIRST_CHECKPOINT, *cmd[3:]]  # cmd: python -m module ARGS
    proc = subprocess.Popen(blocking, cwd=root, env=dict(env, CHECKPOINT_WRITTEN=str(written)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not written.exists():
        assert proc.poll() is None, f"training ended before its first checkpoint:\n{proc.stderr.read()[-3000:]}"
        assert time.time() < deadline, "no checkpoint within 300 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # after epoch 1's checkpoint.pth, before its 1epoch.pth
    proc.wait()
    assert not (killed / "1epoch.pth").exists() and not (killed / "2epoch.pth").exists()
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


@pytest.mark.slow
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
        extra = extra + ["--init_param", f"{wavegan_exp / '2epoch.pth'}:tts.generator:tts.generator.wavegan",
                         *wavegan_settings(wavegan_exp, joint="training_phase=joint" in extra)]
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
