"""wavegan_vae through ESPnet's stock entry points: collect stats, train, resume, copy synthesis."""

import json
import textwrap

import pytest

# Stock ESPnet entry points in subprocesses: minutes (deselect with -m 'not slow').
pytestmark = pytest.mark.slow


def test_stock_trainer_trains_and_resumes(lj_wavegan):
    root, exp, first, resumed = lj_wavegan
    assert (exp / "1epoch.pth").exists() and (exp / "2epoch.pth").exists()
    assert (exp / "checkpoint.pth").exists()
    log = resumed.stderr
    assert "1epoch results" not in log, "the resumed run must not redo epoch 1"
    assert "2epoch results" in log
    assert "total_count=10" in log  # 5 iterations per epoch, counted on from the checkpoint
    assert "generator_mel_loss" in log and "discriminator_loss" in log
    config = (exp / "config.yaml").read_text()
    assert "tts: wavegan_vae" in config


def test_copy_synthesis_with_text2speech_from_checkpoint(lj_wavegan, python_run):
    root, exp, _, _ = lj_wavegan
    script = textwrap.dedent(
        f"""
        import json, soundfile as sf, torch
        from espnet2.bin.tts_inference import Text2Speech
        t2s = Text2Speech(train_config={str(exp / 'config.yaml')!r}, model_file={str(exp / '2epoch.pth')!r},
                          use_teacher_forcing=True)
        path = open({str(root / 'data/valid/wav.scp')!r}).readline().split()[1]
        speech, fs = sf.read(path, dtype="float32")
        out = t2s("hello", speech=torch.from_numpy(speech))
        print(json.dumps({{"n_in": len(speech), "n_out": out["wav"].numel(), "fs": t2s.fs,
                          "finite": bool(torch.isfinite(out["wav"]).all()),
                          "z": list(out["feat_gen"].shape), "type": type(t2s.tts).__name__}}))
        """
    )
    out = json.loads(python_run(["-c", script]).stdout.strip().splitlines()[-1])
    assert out["type"] == "WaveGANVAE" and out["fs"] == 22050 and out["finite"]
    assert out["n_out"] == out["n_in"]
    assert out["z"] == [out["n_in"] // 256 + 1, 16]
