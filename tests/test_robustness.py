"""Bad input: clear errors that name the file/utterance, never a silent garbage result."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from conftest import CORPORA, REPO, tiny_glow_wavegan, tiny_wavegan_vae
from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, check_data_dir
from espnet2_glow_wavegan.safe_load import ModelFileError, check_model_file, safe_text2speech

LJ_WAVS = CORPORA / "mini_ljspeech/LJSpeech-1.1/wavs"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(text=torch.zeros(0, dtype=torch.long)), "empty"),
        (dict(text=torch.ones(7, dtype=torch.long)), "unknown"),
        (dict(text=torch.arange(2, 9), sids=torch.tensor([4])), "outside the speaker table 0..3"),
        (dict(text=torch.arange(2, 9), sids=torch.tensor([-1])), "outside the speaker table"),
        (dict(text=torch.arange(2, 9), sids=torch.tensor([1]), spembs=torch.ones(5)), "has 5 dimensions, the model takes 8"),
        (dict(text=torch.arange(2, 9), sids=torch.tensor([1]), spembs=torch.full((8,), float("nan"))), "NaN"),
        (dict(text=torch.arange(2, 9), spembs=torch.ones(8)), "pass sids"),
    ],
    ids=["empty", "all-unk", "sid-too-large", "sid-negative", "spemb-size", "spemb-nan", "sid-missing"],
)
def test_bad_synthesis_input_is_a_clear_error(kwargs, message):
    model = tiny_glow_wavegan(prior_params=dict(spks=4, spk_embed_dim=8, global_channels=16)).eval()
    with torch.no_grad(), pytest.raises(ValueError, match=message):
        model.inference(**kwargs)


def test_very_long_text_is_decoded_in_chunks():
    model = tiny_glow_wavegan().eval()
    model.decode_chunk_frames = 300
    text = torch.randint(2, 20, (3000,))
    durations = torch.full((3000,), 2)
    with torch.no_grad():
        chunked = model.inference(text, durations=durations, noise_scale=0.0)["wav"]
        model.decode_chunk_frames = 0
        whole = model.inference(text, durations=durations, noise_scale=0.0)["wav"]
    assert chunked.numel() == whole.numel() == 6000 * 256
    # The decoder's receptive field is shorter than the 32-frame context: seams are exact
    # up to float rounding.
    assert torch.allclose(chunked, whole, atol=1e-5), (chunked - whole).abs().max()


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['PAYLOAD_MARKER']}",))


def test_model_file_with_pickled_code_is_refused_without_running_it(tmp_path, monkeypatch):
    marker = tmp_path / "payload_ran"
    monkeypatch.setenv("PAYLOAD_MARKER", str(marker))
    evil = tmp_path / "evil.pth"
    torch.save({"tts.generator.x": torch.zeros(1), "payload": _Payload()}, evil)
    with pytest.raises(ModelFileError, match="refused to load"):
        check_model_file(evil)
    assert not marker.exists()


def test_truncated_empty_and_missing_model_files_are_named(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"w": torch.randn(1000)}, good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:500])
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert set(check_model_file(good)) == {"w"}
    for path, message in [(truncated, "truncated or corrupt"), (empty, "empty"), (tmp_path / "none.pth", "does not exist")]:
        with pytest.raises(ModelFileError, match=message) as e:
            check_model_file(path)
        assert str(path) in str(e.value)


@pytest.mark.slow
def test_safe_text2speech_rejects_a_model_file_of_another_config(lj_wavegan, tmp_path):
    """A wavegan_vae checkpoint given with a glow_wavegan config: ESPnet would load it half (strict=False)."""
    root, wavegan_exp, _, _ = lj_wavegan
    config = yaml.safe_load((wavegan_exp / "config.yaml").read_text())
    config.update(yaml.safe_load((REPO / "egs2/ljspeech/tts1/conf/tuning/train_glow_wavegan_tiny.yaml").read_text()))
    config["token_list"] = yaml.safe_load((wavegan_exp / "config.yaml").read_text())["token_list"]
    other = tmp_path / "config.yaml"
    other.write_text(yaml.safe_dump(config))
    with pytest.raises(ModelFileError, match="does not match its config"):
        safe_text2speech(model_file=wavegan_exp / "2epoch.pth", train_config=other)


def write_wav_dir(root: Path, utts):
    """A data dir whose utterances are (utt_id, path, text)."""
    d = root / "data"
    d.mkdir(parents=True, exist_ok=True)
    (d / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p, _ in utts))
    (d / "text").write_text("".join(f"{u} {t}\n" for u, _, t in utts))
    (d / "utt2spk").write_text("".join(f"{u} spk\n" for u, _, _ in utts))
    (root / "keys").write_text("".join(f"{u}\n" for u, _, _ in utts))
    return d


def bad_audio(tmp_path: Path, kind: str) -> Path:
    good, fs = sf.read(LJ_WAVS / "LJ001-0001.wav", dtype="float32")
    path = tmp_path / f"{kind}.wav"
    if kind == "zero_length":
        sf.write(path, np.zeros(0, dtype=np.float32), fs)
    elif kind == "truncated":
        path.write_bytes((LJ_WAVS / "LJ001-0001.wav").read_bytes()[:30])
    elif kind == "not_audio":
        path.write_text("this is not a wav file")
    elif kind == "nan":
        bad = good.copy()
        bad[100] = np.nan
        sf.write(path, bad, fs, subtype="FLOAT")
    elif kind == "stereo":
        sf.write(path, np.stack([good, good], axis=1), fs)
    elif kind == "other_rate":
        sf.write(path, good[::2], fs // 2)
    elif kind == "missing":
        pass
    return path


@pytest.mark.parametrize(
    "kind,message",
    [
        ("zero_length", "has no samples"),
        ("truncated", "cannot read"),
        ("not_audio", "cannot read"),
        ("missing", "cannot read"),
        ("nan", "NaN or Inf"),
        ("stereo", "2 channels"),
        ("other_rate", "11025 Hz, expected 22050 Hz"),
    ],
)
def test_bad_audio_stops_stage_2_naming_utterance_and_file(tmp_path, kind, message):
    path = bad_audio(tmp_path, kind)
    good = LJ_WAVS / "LJ001-0002.wav"
    d = write_wav_dir(tmp_path, [("utt_bad", path, "some text"), ("utt_good", good, "more text")])
    cmd = [sys.executable, "-m", "espnet2_glow_wavegan.recipe.format_wav", "--data", str(d), "--keys",
           str(tmp_path / "keys"), "--out", str(tmp_path / "dump"), "--job", "1", "--fs", "22050", "--resample", "false"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "utt_bad" in proc.stderr and str(path) in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "dump/split/wav.scp.1").exists()  # nothing that looks finished
    # The skip option carries on and lists the bad utterance.
    proc = subprocess.run(cmd + ["--on_error", "skip"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert (tmp_path / "dump/split/wav.scp.1").read_text().split()[0] == "utt_good"
    assert (tmp_path / "dump/split/bad_utts.1").read_text().startswith("utt_bad ")


def test_data_dir_inconsistencies_are_named(tmp_path):
    good = LJ_WAVS / "LJ001-0002.wav"
    d = write_wav_dir(tmp_path, [("a", good, "text a"), ("b", good, "text b")])
    assert check_data_dir(d) == 2
    (d / "text").write_text("a text a\nb text b\nc text c\n")
    with pytest.raises(DataError, match=r"text: utterances with no audio in wav.scp: \['c'\]"):
        check_data_dir(d)
    (d / "text").write_text("a text a\n")
    with pytest.raises(DataError, match=r"text: no entry for utterances in wav.scp: \['b'\]"):
        check_data_dir(d)
    (d / "text").write_text("a text a\nb    \n")
    with pytest.raises(DataError, match=r"empty or whitespace-only text for \['b'\]"):
        check_data_dir(d)
    (d / "text").write_bytes(b"a text a\nb caf\xe9\n")
    with pytest.raises(DataError, match=r"text:2: not valid UTF-8"):
        check_data_dir(d)


def test_non_utf8_metadata_is_named(tmp_path):
    corpus = tmp_path / "LJSpeech-1.1"
    (corpus / "wavs").mkdir(parents=True)
    for utt in ("LJ001-0001", "LJ001-0002"):
        (corpus / "wavs" / f"{utt}.wav").write_bytes((LJ_WAVS / "LJ001-0001.wav").read_bytes())
    (corpus / "metadata.csv").write_bytes(b"LJ001-0001|ok|ok\nLJ001-0002|caf\xe9|cafe\n")
    proc = subprocess.run(
        [sys.executable, "-m", "espnet2_glow_wavegan.recipe.prepare_ljspeech", "--corpus", str(corpus),
         "--out", str(tmp_path / "data"), "--num_heldout", "1"], capture_output=True, text=True,
    )
    assert proc.returncode == 1 and "metadata.csv:2: not valid UTF-8" in proc.stderr
    assert not (tmp_path / "data").exists()


def test_non_finite_loss_stops_training_with_the_turn_named():
    model = tiny_wavegan_vae().train()
    speech = torch.randn(1, 256 * 24) * 0.1
    speech[0, ::1000] = float("nan")  # broken audio wherever the random segment falls
    with pytest.raises(FloatingPointError, match=r"non-finite discriminator loss at training turn 1 .*discriminator_loss=nan"):
        model(text=torch.ones(1, 3, dtype=torch.long), text_lengths=torch.tensor([3]), speech=speech,
              speech_lengths=torch.tensor([speech.size(1)]), forward_generator=False)


@pytest.mark.slow
def test_text_the_token_list_cannot_express_is_named(tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", "<space>", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ.", "<sos/eos>"]) + "\n")
    good, bad = tmp_path / "good_text", tmp_path / "bad_text"
    good.write_text("u1 HELLO THERE.\n")
    bad.write_text("u1 HELLO.\nu2 今天天气很好\n")
    base = [sys.executable, "-m", "espnet2_glow_wavegan.recipe.check_tokens", "--token_list", str(tokens),
            "--token_type", "char", "--cleaner", "none", "--text"]
    assert subprocess.run(base + [str(good)], capture_output=True, text=True).returncode == 0
    proc = subprocess.run(base + [str(good), str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and str(bad) in proc.stderr and "['u2']" in proc.stderr and "all <unk>" in proc.stderr
