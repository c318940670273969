"""wavegan_vae through ESPnet's stock entry points: collect stats, train, resume, copy synthesis."""

import json
import textwrap

import pytest

from conftest import REPO, data_args, make_ljspeech_data_dirs

TINY_CONFIG = REPO / "egs2/ljspeech/tts1/conf/tuning/train_wavegan_vae_tiny.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Stats + 1 epoch + resumed 2nd epoch of the tiny WaveGAN, with stock gan_tts_train."""
    from conftest import run_python

    root = tmp_path_factory.mktemp("wavegan_espnet")
    tokens = make_ljspeech_data_dirs(root, {"train": range(0, 8), "valid": range(8, 10)})
    common = ["--config", str(TINY_CONFIG), "--use_preprocessor", "true", "--token_type", "char",
              "--token_list", str(tokens), *data_args(root)]
    keys = root / "keys"
    keys.mkdir()
    for name in ("train", "valid"):
        lines = (root / "data" / name / "wav.scp").read_text().splitlines()
        (keys / name).write_text("".join(line.split()[0] + "\n" for line in lines))
    run_python(["-m", "espnet2.bin.gan_tts_train", *common, "--collect_stats", "true",
                "--train_shape_file", str(keys / "train"), "--valid_shape_file", str(keys / "valid"),
                "--output_dir", str(root / "stats")], cwd=root)
    shapes = []
    for split in ("train", "valid"):
        for name in ("text_shape", "speech_shape"):
            shapes += [f"--{split}_shape_file", str(root / "stats" / split / name)]
    exp = root / "exp"
    first = run_python(["-m", "espnet2.bin.gan_tts_train", *common, *shapes, "--output_dir", str(exp),
                        "--max_epoch", "1", "--resume", "true"], cwd=root)
    resumed = run_python(["-m", "espnet2.bin.gan_tts_train", *common, *shapes, "--output_dir", str(exp),
                          "--max_epoch", "2", "--resume", "true"], cwd=root)
    return root, exp, first, resumed


def test_stock_trainer_trains_and_resumes(trained):
    root, exp, first, resumed = trained
    assert (exp / "1epoch.pth").exists() and (exp / "2epoch.pth").exists()
    assert (exp / "checkpoint.pth").exists()
    log = resumed.stderr
    assert "1epoch results" not in log, "the resumed run must not redo epoch 1"
    assert "2epoch results" in log
    assert "total_count=10" in log  # 5 iterations per epoch, counted on from the checkpoint
    assert "generator_mel_loss" in log and "discriminator_loss" in log
    config = (exp / "config.yaml").read_text()
    assert "tts: wavegan_vae" in config


def test_copy_synthesis_with_text2speech_from_checkpoint(trained, python_run):
    root, exp, _, _ = trained
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
