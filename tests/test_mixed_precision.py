"""Mixed precision (ESPnet's ``use_amp``) and device-clean training steps, tested on the CPU.

ESPnet's GANTrainer runs every turn under ``torch.cuda.amp.autocast`` (float16, no dtype
given) with a ``GradScaler`` when ``use_amp`` is set; both are CUDA-only. CPU autocast applies
the same op policy in float16 or bfloat16 (float16 reproduces CUDA's underflows, e.g. the mel
filterbank's 1e-10 floor rounding to 0), so the model side is tested here under
``torch.autocast("cpu", ...)``, and the trainer side with ESPnet's own GANTrainer with its
autocast and GradScaler pointed at the CPU.
"""

import contextlib
import subprocess
import sys
import textwrap
import types

import pytest
import torch

from conftest import LJ_CONF, REPO, data_args, run_python, tiny_glow_wavegan, tiny_wavegan_vae, tts_conf, wavegan_settings
from espnet2_glow_wavegan.wavegan.wavegan_vae import WaveGANVAE

HOP = 256
DTYPES = [torch.float16, torch.bfloat16]


def inner_gan():
    torch.manual_seed(0)
    return WaveGANVAE(idim=20, odim=1, **tts_conf("train_inner_gan_tiny.yaml"))


def glow_stored():
    return tiny_glow_wavegan(speech_input="posterior_stats")


MODELS = {
    "wavegan_vae": lambda: tiny_wavegan_vae(),
    "wavegan_vae_istft": lambda: tiny_wavegan_vae(decoder="istft"),
    "inner_gan": inner_gan,
    "glow_prior_stored_latents": glow_stored,
    "glow_prior_waveform": lambda: tiny_glow_wavegan(),
    "glow_joint": lambda: tiny_glow_wavegan(training_phase="joint"),
    "glow_joint_istft": lambda: tiny_glow_wavegan(training_phase="joint", decoder="istft"),
}


def batch(model, seed=1):
    """Two utterances of different lengths (text + waveform, or the stored posterior)."""
    torch.manual_seed(seed)
    lengths = torch.tensor([HOP * 48 + 31, HOP * 35])
    speech = torch.randn(2, int(lengths.max())) * 0.1
    speech[1, lengths[1]:] = 0
    data = dict(text=torch.randint(2, 20, (2, 14)), text_lengths=torch.tensor([14, 10]), speech=speech,
                speech_lengths=lengths)
    if getattr(model, "speech_input", "waveform") == "posterior_stats":
        with torch.no_grad():
            mean, log_std, mask = model.generator.wavegan.encoder(speech, lengths)
        data.update(speech=torch.cat([mean, log_std], dim=1).transpose(1, 2), speech_lengths=mask.sum(dim=(1, 2)).long())
    return data


def without_dropout(model):
    """Train mode without dropout, so that two runs draw the same random numbers for the same seed."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    return model


def turn_losses(model, data, dtype=None):
    losses = {}
    for forward_generator in (False, True):
        torch.manual_seed(7)
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(**data, forward_generator=forward_generator)
        out["loss"].backward()
        losses["generator" if forward_generator else "discriminator"] = out["stats"]
    return losses


@pytest.mark.parametrize("dtype", DTYPES, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(MODELS))
def test_a_training_step_under_autocast_is_finite_and_close_to_float32(name, dtype):
    """Same model, same batch, same random draws: every loss term finite and close to float32.

    Tolerance: the networks' convolutions and matmuls run in the low precision (float16: 11
    significant bits, bfloat16: 8), so each layer's output carries a relative rounding error
    of about 2^-11 / 2^-8 that grows through a few dozen layers; the sensitive parts (flow
    state and log-determinants, likelihoods, KL, mel loss, inverse STFT) are float32. A term
    may move by 3% (float16) / 8% (bfloat16) of its size plus a small absolute slack for terms
    near 0 (the MLE, the adversarial losses of an untrained discriminator).
    """
    torch.manual_seed(0)
    reference = without_dropout(MODELS[name]())
    torch.manual_seed(0)
    low = without_dropout(MODELS[name]())  # built twice: weight-normed modules cannot be deep-copied
    data = batch(reference)
    expected = turn_losses(reference, data)
    got = turn_losses(low, data, dtype)
    relative, slack = (0.03, 0.02) if dtype == torch.float16 else (0.08, 0.05)
    for turn in expected:
        assert set(got[turn]) == set(expected[turn])
        for key, value in expected[turn].items():
            assert torch.isfinite(got[turn][key]).all(), (turn, key, got[turn])
            assert abs(float(got[turn][key]) - float(value)) <= relative * abs(float(value)) + slack, (
                turn, key, float(got[turn][key]), float(value))


def test_the_sensitive_parts_stay_float32_under_float16_autocast():
    """Under float16 autocast: the mel loss does not hit log(0) on silence, the flow's state and the
    prior's statistics are float32, and the iSTFT decoder's waveform comes out of a float32 head."""
    vae = tiny_wavegan_vae(decoder="istft")
    silence = torch.zeros(2, HOP * 40)
    with torch.autocast("cpu", dtype=torch.float16):
        loss, stats = vae.gan_loss.generator_loss(vae.discriminator, silence[:, None, :HOP * 16],
                                                  silence[:, None, :HOP * 16])
        wav = vae.generator.decode(torch.randn(1, vae.generator.latent_dim, 12))
        glow = tiny_glow_wavegan()
        out = glow.generator.prior(torch.randint(2, 20, (1, 6)), torch.tensor([6]),
                                   torch.randn(1, glow.generator.wavegan.latent_dim, 20), torch.tensor([20]))
    assert torch.isfinite(loss) and float(stats["generator_mel_loss"]) == 0.0
    assert wav.dtype == torch.float32
    assert out["mle_loss"].dtype == out["mean_y"].dtype == out["duration_loss"].dtype == torch.float32
    assert torch.isfinite(out["mle_loss"])


@pytest.mark.parametrize("name", ["glow_prior_stored_latents", "wavegan_vae_istft"])
def test_overfitting_under_autocast_lowers_the_loss(name):
    model = MODELS[name]()
    data = batch(model)
    optims = [torch.optim.AdamW(model.generator.parameters(), lr=2e-3, betas=(0.8, 0.99)),
              torch.optim.AdamW(model.discriminator.parameters(), lr=2e-3, betas=(0.8, 0.99))]
    key = "generator_mle_loss" if name.startswith("glow") else "generator_mel_loss"
    values = []
    for _ in range(40):
        for forward_generator, optim in ((False, optims[1]), (True, optims[0])):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(**data, forward_generator=forward_generator)
            optim.zero_grad()
            out["loss"].backward()
            optim.step()
        values.append(float(out["stats"][key]))
    assert sum(values[-5:]) / 5 < sum(values[:5]) / 5 - 0.05 * abs(sum(values[:5]) / 5), values


@pytest.mark.parametrize("name", ["glow_prior_stored_latents", "wavegan_vae", "glow_joint"])
def test_espnets_grad_scaler_steps_both_turns(name):
    """The GradScaler calls of ESPnet's GANTrainer, per turn: the prior phase's discriminator turn
    used to leave its optimiser without gradients ("No inf checks were recorded for this optimizer")."""
    model = MODELS[name]()
    data = batch(model)
    optims = [torch.optim.AdamW(model.generator.parameters(), lr=1e-4),
              torch.optim.AdamW(model.discriminator.parameters(), lr=1e-4)]
    scaler = torch.amp.GradScaler("cpu")
    for forward_generator in (False, True):
        with torch.autocast("cpu", dtype=torch.float16):
            out = model(**data, forward_generator=forward_generator)
        optimizer = optims[out["optim_idx"]]
        scaler.scale(out["loss"]).backward()
        scaler.unscale_(optimizer)
        scaler.step(optimizer)
        scaler.update()
        for o in optims:
            o.zero_grad()
    if name.startswith("glow_prior"):
        assert float(model.discriminator.unused.detach().abs().sum()) == 0.0  # zero gradients leave it at 0


def test_a_non_finite_loss_under_autocast_is_a_skipped_turn_until_too_many_in_a_row(caplog):
    from espnet2_glow_wavegan.utils import MAX_CONSECUTIVE_NONFINITE_AMP_TURNS, check_finite

    model = tiny_wavegan_vae()
    nan = torch.tensor(float("nan"))
    with torch.autocast("cpu", dtype=torch.float16):
        for _ in range(MAX_CONSECUTIVE_NONFINITE_AMP_TURNS - 1):
            check_finite(nan, {"generator_mel_loss": nan}, model, generator_turn=True)
        check_finite(torch.tensor(1.0), {}, model, generator_turn=True)  # a finite turn resets the count
        for _ in range(MAX_CONSECUTIVE_NONFINITE_AMP_TURNS - 1):
            check_finite(nan, {"generator_mel_loss": nan}, model, generator_turn=True)
        with pytest.raises(FloatingPointError, match="20 turns in a row under mixed precision"):
            check_finite(nan, {"generator_mel_loss": nan}, model, generator_turn=True)
    assert "the GradScaler skips this step" in caplog.text and "generator_mel_loss=nan" in caplog.text
    with pytest.raises(FloatingPointError, match="non-finite discriminator loss at training turn"):
        check_finite(nan, {}, tiny_wavegan_vae(), generator_turn=False)  # float32: stops at once


class HostReadError(AssertionError):
    pass


# Reads the model's code does not own, by (file, function) of the reading frame, and why they stay.
FOREIGN_HOST_READS = {
    # ESPnet's layer drop draws its probabilities with torch.empty(): a host tensor on any device.
    ("espnet/nets/pytorch_backend/transformer/repeat.py", "forward"): "host-side draw",
    # Vocos' ISTFT asserts that its window envelope is positive: one wait per iSTFT decoder step
    # on a GPU (docs/gpu.md).
    ("vocos/spectral_ops.py", "forward"): "vocos ISTFT envelope assert",
}


def foreign_read(frame) -> bool:
    code = frame.f_code
    return any(code.co_filename.endswith(path) and code.co_name == name for path, name in FOREIGN_HOST_READS)


@pytest.fixture
def no_host_reads(monkeypatch):
    """Inside ``with no_host_reads.forbidden():`` every Python-level read of a tensor's value raises
    (what stalls a GPU step), except in functions wrapped with ``no_host_reads.allowed``."""
    state = {"allowed": 1}

    def guard(name):
        original = getattr(torch.Tensor, name)

        def guarded(self, *args, **kwargs):
            if not state["allowed"] and not foreign_read(sys._getframe(1)):
                raise HostReadError(f"Tensor.{name} in a training step")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, guarded)

    for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__"):
        guard(name)

    def allowed(function):
        def call(*args, **kwargs):
            state["allowed"] += 1
            try:
                return function(*args, **kwargs)
            finally:
                state["allowed"] -= 1

        return call

    @contextlib.contextmanager
    def forbidden():
        state["allowed"] -= 1
        try:
            yield
        finally:
            state["allowed"] += 1

    return types.SimpleNamespace(allowed=allowed, forbidden=forbidden)


@pytest.mark.parametrize("name", list(MODELS))
def test_training_turns_read_nothing_back_from_the_device(name, no_host_reads, monkeypatch):
    """Both turns' computations, as the trainer runs them, without reading a tensor back to the host;
    the exceptions: ESPnet's monotonic alignment search, which runs on the CPU (as in VITS), and the
    one finite-loss check at the end of a turn (where ESPnet's reporter reads every statistic anyway)."""
    import espnet2_glow_wavegan.gan_tts as gan_tts
    import espnet2_glow_wavegan.glow.prior as prior

    model = MODELS[name]()
    data = batch(model)
    model(**data, forward_generator=False)  # first turn: ActNorm's data-dependent initialisation, the WaveGAN check
    monkeypatch.setattr(prior, "maximum_path", no_host_reads.allowed(prior.maximum_path))
    monkeypatch.setattr(gan_tts, "check_finite", no_host_reads.allowed(gan_tts.check_finite))
    for forward_generator in (False, True):
        with no_host_reads.forbidden():
            model(**data, forward_generator=forward_generator)["loss"].backward()


def test_actnorm_knows_it_is_initialised_without_reading_its_buffer():
    model = tiny_glow_wavegan()
    flows = [m for m in model.generator.prior.flow.flows if hasattr(m, "_initialized")]
    assert flows and not any(m._initialized for m in flows)
    model(**batch(model))
    assert all(m._initialized and bool(m.initialized) for m in flows)
    fresh = tiny_glow_wavegan()
    fresh.load_state_dict(model.state_dict())  # a checkpoint: initialised, never again
    assert all(m._initialized for m in fresh.generator.prior.flow.flows if hasattr(m, "_initialized"))


def test_segments_and_expansion_equal_espnets_and_the_loop_they_replace():
    from espnet2.gan_tts.utils import get_segments

    from espnet2_glow_wavegan.glow.prior import expand_by_durations
    from espnet2_glow_wavegan.utils import padded_segments

    x = torch.randn(3, 4, 50)
    starts = torch.tensor([0, 17, 45])
    got = padded_segments(x, starts, 10)
    torch.testing.assert_close(got[:2], get_segments(x[:2], starts[:2], 10), rtol=0, atol=0)
    torch.testing.assert_close(got[2, :, :5], x[2, :, 45:], rtol=0, atol=0)
    assert not got[2, :, 5:].any()  # past the end: zeros
    durations = torch.tensor([[2, 0, 3, 1], [1, 1, 0, 0]])
    tokens = torch.randn(2, 5, 4)
    expanded = expand_by_durations(tokens, durations, 8)
    for b in range(2):
        loop = torch.repeat_interleave(tokens[b], durations[b], dim=1)
        torch.testing.assert_close(expanded[b, :, : loop.size(1)], loop, rtol=0, atol=0)
        assert not expanded[b, :, loop.size(1):].any()


@pytest.mark.slow
def test_prior_phase_trains_with_espnets_amp_path_on_the_cpu(lj_wavegan, tmp_path):
    """Stock ``gan_tts_train --use_amp true``, prior phase, with the trainer's CUDA autocast and
    GradScaler replaced by their CPU versions (float16): one epoch completes."""
    root, wavegan_exp, _, _ = lj_wavegan
    runner = textwrap.dedent("""
        import sys, torch
        import espnet2.train.gan_trainer as gan_trainer, espnet2.train.trainer as trainer
        gan_trainer.autocast = lambda enabled=True: torch.autocast("cpu", dtype=torch.float16, enabled=enabled)
        class CPUGradScaler(torch.cuda.amp.GradScaler):  # ESPnet type-checks against the CUDA class
            def __init__(self, *args, **kwargs):
                torch.amp.GradScaler.__init__(self, "cpu")
        trainer.GradScaler = CPUGradScaler
        from espnet2.bin.gan_tts_train import main
        main(sys.argv[1:])
    """)
    out = tmp_path / "exp"
    proc = run_python(["-c", runner, *train_args(root, out, "--use_amp", "true", "--init_param",
                                                 f"{wavegan_exp / '2epoch.pth'}:tts.generator:tts.generator.wavegan",
                                                 *wavegan_settings(wavegan_exp))],
                      cwd=root, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stderr
    assert "1epoch results" in log and "nan" not in log.split("1epoch results")[1].split("\n")[0].lower()


@pytest.mark.slow
def test_use_amp_without_cuda_says_so_once(lj_wavegan, tmp_path):
    root, wavegan_exp, _, _ = lj_wavegan
    proc = run_python(["-m", "espnet2.bin.gan_tts_train",
                       *train_args(root, tmp_path / "exp", "--use_amp", "true", "--init_param",
                                   f"{wavegan_exp / '2epoch.pth'}:tts.generator:tts.generator.wavegan",
                                   *wavegan_settings(wavegan_exp))], cwd=root)
    assert proc.stderr.count("use_amp: true has no effect here") == 1
    assert (tmp_path / "exp" / "1epoch.pth").exists()


def train_args(root, output_dir, *extra):
    shapes = []
    for split in ("train", "valid"):
        for name in ("text_shape", "speech_shape"):
            shapes += [f"--{split}_shape_file", str(root / "stats" / split / name)]
    return ["--config", str(LJ_CONF / "train_glow_wavegan_tiny.yaml"), "--use_preprocessor", "true",
            "--token_type", "char", "--token_list", str(root / "tokens.txt"), *data_args(root), *shapes,
            "--tts_conf", "speech_input=waveform", "--output_dir", str(output_dir), "--max_epoch", "1", *extra]


FAKE_NVIDIA_SMI = "#!/bin/sh\nprintf '0\\n1\\n'\n"


def test_the_local_runner_gives_each_gpu_job_its_own_gpu(tmp_path):
    """Five one-GPU jobs on a (fake) two-GPU machine: each sees one device, never one another's at the same time."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    runner = REPO / "egs2/TEMPLATE/tts1/utils/run_local.sh"
    job = 'echo "$CUDA_VISIBLE_DEVICES $(date +%s%N) start"; sleep 0.3; echo "$CUDA_VISIBLE_DEVICES $(date +%s%N) end"'
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    proc = subprocess.run(["bash", str(runner), "--gpu", "1", "JOB=1:5", str(tmp_path / "log.JOB"), "bash", "-c", job],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    events = sorted(
        (int(t), device, kind)
        for n in range(1, 6)
        for device, t, kind in (line.split() for line in (tmp_path / f"log.{n}").read_text().splitlines()
                                if not line.startswith("#"))
    )
    busy = {}
    for _, device, kind in events:
        busy[device] = busy.get(device, 0) + (1 if kind == "start" else -1)
        assert busy[device] <= 1, events
    assert {device for _, device, _ in events} == {"0", "1"}
    # A CPU job (no --gpu) is left as it was; CUDA_VISIBLE_DEVICES groups for --gpu 2.
    proc = subprocess.run(["bash", str(runner), "--gpu", "2", "JOB=1:2", str(tmp_path / "pair.JOB"), "bash", "-c",
                           "echo $CUDA_VISIBLE_DEVICES"], env=dict(env, CUDA_VISIBLE_DEVICES="3,5,6,7"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert {(tmp_path / f"pair.{n}").read_text().splitlines()[2] for n in (1, 2)} == {"3,5", "6,7"}
    proc = subprocess.run(["bash", str(runner), "--gpu", "3", str(tmp_path / "x.log"), "true"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "--gpu 3: 2 GPU(s) visible" in proc.stderr


def test_stage_7b_refuses_latents_with_a_missing_line_or_a_cut_archive(tmp_path):
    import kaldiio
    import numpy as np

    from espnet2_glow_wavegan.recipe.extract_latents import check_complete
    from espnet2_glow_wavegan.recipe.kaldi_dir import DataError

    out = tmp_path / "latents"
    out.mkdir()
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text("a /x/a.wav\nb /x/b.wav\nc /x/c.wav\n")
    with kaldiio.WriteHelper(f"ark,scp:{out}/stats.ark,{out}/stats.scp") as writer:
        for utt, frames in (("a", 5), ("b", 7), ("c", 3)):
            writer(utt, np.ones((frames, 8), dtype=np.float32))
    (out / "speech_shape").write_text("a 5,8\nb 7,8\nc 3,8\n")
    check_complete(out, wav_scp)  # whole
    lines = (out / "stats.scp").read_text().splitlines()
    (out / "stats.scp").write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    with pytest.raises(DataError, match=r"1 utterance\(s\) missing \(e.g. \['b'\]\).*delete .*latents to extract"):
        check_complete(out, wav_scp)
    (out / "stats.scp").write_text("\n".join(lines) + "\n")
    with open(out / "stats.ark", "r+b") as f:
        f.truncate((out / "stats.ark").stat().st_size - 20)
    with pytest.raises(DataError, match=r"damaged latents: c \(.*cut short, 20 bytes missing\).*delete"):
        check_complete(out, wav_scp)
