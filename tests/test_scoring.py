"""Objective metrics on known signals."""

import numpy as np
import pytest
import soundfile as sf

from conftest import CORPORA
from espnet2_glow_wavegan.scoring import score_pair


@pytest.fixture(scope="module")
def speech():
    wav, fs = sf.read(CORPORA / "mini_ljspeech/LJSpeech-1.1/wavs/LJ001-0003.wav")
    return wav, fs


def test_identical_wavs_score_zero(speech):
    wav, fs = speech
    scores = score_pair(wav, wav.copy(), fs)
    assert scores == {"mcd": 0.0, "log_f0_rmse": 0.0, "vuv_error": 0.0, "duration_ratio": 1.0}


def test_pitch_shift_raises_f0_rmse(speech):
    import librosa

    wav, fs = speech
    small = score_pair(wav, librosa.effects.pitch_shift(wav, sr=fs, n_steps=0.5), fs)
    large = score_pair(wav, librosa.effects.pitch_shift(wav, sr=fs, n_steps=4), fs)
    # 4 semitones = ln(2) * 4 / 12 = 0.23 in log-F0.
    assert 0.15 < large["log_f0_rmse"] < 0.35
    assert small["log_f0_rmse"] < large["log_f0_rmse"]


def test_growing_noise_grows_mcd(speech):
    wav, fs = speech
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(wav))
    mcds = [score_pair(wav, wav + level * noise, fs)["mcd"] for level in (0.0005, 0.005, 0.05)]
    assert mcds[0] < mcds[1] < mcds[2], mcds


def test_duration_ratio_and_resampling(speech):
    import soxr

    wav, fs = speech
    slower = np.concatenate([wav, np.zeros(len(wav) // 2)])
    assert score_pair(wav, slower, fs)["duration_ratio"] == pytest.approx(1.5, abs=1e-3)
    resampled = soxr.resample(wav, fs, 16000)
    assert score_pair(wav, resampled, fs, generated_fs=16000)["duration_ratio"] == pytest.approx(1.0, abs=1e-3)


def test_rescoring_with_other_options_leaves_no_stale_metric(tmp_path):
    from espnet2_glow_wavegan.recipe.score import main

    wav = CORPORA / "mini_ljspeech/LJSpeech-1.1/wavs/LJ001-0003.wav"
    scp = tmp_path / "wav.scp"
    scp.write_text(f"LJ001-0003 {wav}\n")
    out = tmp_path / "scores"
    out.mkdir()
    (out / "utt2dnsmos_ovrl").write_text("LJ001-0003 3.1\n")  # from an earlier run with --dnsmos true
    main(["--ref_scp", str(scp), "--gen_scp", str(scp), "--out_dir", str(out)])
    assert sorted(p.name for p in out.glob("utt2*")) == [
        "utt2duration_ratio", "utt2log_f0_rmse", "utt2mcd", "utt2vuv_error"]
