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


def streamed(model, text, **kwargs):
    return dict(wav=torch.cat(list(model.inference_stream(text, **kwargs))))


def batched(model, text, sids=None, spembs=None, **kwargs):
    return model.batch_inference(text.view(1, -1), torch.tensor([text.numel()]), sids=None if sids is None else sids.view(1),
                                 spembs=None if spembs is None else spembs.view(1, -1), **kwargs)[0]


# Every synthesis entry point checks its input the same way.
ENTRY_POINTS = {"inference": lambda model, text, **kwargs: model.inference(text, **kwargs), "stream": streamed,
                "batch": batched}


@pytest.fixture(params=list(ENTRY_POINTS))
def synthesise(request):
    return ENTRY_POINTS[request.param]


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
def test_bad_synthesis_input_is_a_clear_error(kwargs, message, synthesise):
    model = tiny_glow_wavegan(prior_params=dict(spks=4, spk_embed_dim=8, global_channels=16)).eval()
    with torch.no_grad(), pytest.raises(ValueError, match=message):
        synthesise(model, **kwargs)


def test_language_ids_are_refused_not_ignored():
    """The models have no language table: lids at synthesis (as Text2Speech would pass them) or in training
    would be ignored, so they are refused by name."""
    model = tiny_glow_wavegan()
    with torch.no_grad(), pytest.raises(ValueError, match="lids: these models have no language table"):
        model.eval().inference(torch.arange(2, 9), lids=torch.tensor([0]))
    with pytest.raises(ValueError, match="lids: these models have no language table"):
        model.train()(text=torch.arange(2, 9).view(1, -1), text_lengths=torch.tensor([7]), speech=torch.zeros(1, 4096),
                      speech_lengths=torch.tensor([4096]), lids=torch.tensor([[0]]))


@pytest.mark.parametrize(
    "knobs,message",
    [
        (dict(length_scale=0.0), r"length_scale must be a finite number > 0 .* got 0.0"),
        (dict(length_scale=-1.0), r"length_scale must be a finite number > 0"),
        (dict(length_scale=float("nan")), r"length_scale must be a finite number > 0 .* got nan"),
        (dict(length_scale=float("inf")), r"length_scale must be a finite number > 0"),
        (dict(noise_scale=-1.0), r"noise_scale must be a finite number >= 0 .* got -1.0"),
        (dict(noise_scale=float("nan")), r"noise_scale must be a finite number >= 0"),
        (dict(length_scale=1e4), r"the output would last \d+ s \(length_scale 10000.0\), over max_output_seconds = 600 s"),
        (dict(max_output_seconds=0.5), r"over max_output_seconds = 0.5 s"),
    ],
    ids=["length-zero", "length-negative", "length-nan", "length-inf", "noise-negative", "noise-nan", "too-long",
         "own-limit"],
)
def test_synthesis_knobs_out_of_range_are_refused(knobs, message, synthesise):
    model = tiny_glow_wavegan().eval()
    with torch.no_grad():
        model.generator.prior.duration_predictor.linear.bias.fill_(3.0)  # ~19 frames a token
        with pytest.raises(ValueError, match=message):
            synthesise(model, torch.arange(2, 12), **knobs)
        # A longer limit, per call, lets long audio through.
        assert synthesise(model, torch.arange(2, 12), length_scale=4.0, max_output_seconds=1e4)["wav"].numel() > 0
    with pytest.raises(ValueError, match="length_scale"):
        tiny_glow_wavegan(length_scale=-1.0)  # the config's defaults are checked too


def test_text_with_nothing_to_speak_is_refused(synthesise):
    model = tiny_glow_wavegan().eval()
    model.set_token_list(["<blank>", "<unk>", "<space>", "A", "B", ".", ",", "<sos/eos>"] + [f"x{i}" for i in range(12)])
    assert model.silent_token_ids.tolist() == [0, 1, 2, 5, 6, 7]
    with torch.no_grad():
        for text in ([2], [2, 5, 2], [6, 1]):  # spaces, punctuation, <unk>: what "   " or "..." become
            with pytest.raises(ValueError, match="nothing to speak"):
                synthesise(model, torch.tensor(text))
        assert synthesise(model, torch.tensor([2, 3, 5]), noise_scale=0.0)["wav"].numel() > 0  # " A." speaks


def test_speaker_inputs_to_a_model_without_speakers_are_refused(synthesise):
    model = tiny_glow_wavegan().eval()
    vae = tiny_wavegan_vae().eval()
    with torch.no_grad():
        with pytest.raises(ValueError, match="no speaker table.*takes no sids"):
            synthesise(model, torch.arange(2, 9), sids=torch.tensor([999]))
        with pytest.raises(ValueError, match="takes no speaker embedding"):
            synthesise(model, torch.arange(2, 9), spembs=torch.full((8,), float("nan")))
        with pytest.raises(ValueError, match="takes no sids"):
            vae.inference(speech=torch.randn(256 * 8), sids=torch.tensor([0]))


def test_weights_of_another_config_are_refused_by_the_model_itself():
    """ESPnet's Text2Speech loads non-strictly; the model's own load hook refuses what does not fit."""
    trained = tiny_glow_wavegan()
    state = {f"tts.{k}": v for k, v in trained.state_dict().items()}
    for blocks in (1, 3):  # the tiny config has 2 flow blocks
        other = torch.nn.Module()
        other.tts = tiny_glow_wavegan(prior_params=dict(flow_conf=dict(blocks=blocks)))
        with pytest.raises(ValueError, match=r"do not fit .*prior_params.flow_conf"):
            other.load_state_dict(state, strict=False)
    same = torch.nn.Module()
    same.tts = tiny_glow_wavegan()
    same.load_state_dict(state, strict=False)
    # A prior checkpoint from before the stand-in discriminator (it carried the WaveGAN's) still loads.
    old = dict(state)
    del old["tts.discriminator.unused"]
    old.update({f"tts.discriminator.{k}": v for k, v in tiny_wavegan_vae().discriminator.state_dict().items()})
    same.load_state_dict(old, strict=False)


def test_transliterated_characters():
    from espnet2.text.cleaner import TextCleaner

    from espnet2_glow_wavegan.text_checks import transliterated_characters

    clean = TextCleaner("tacotron")
    assert transliterated_characters("§§§", clean("§§§")) == ["§"]
    assert transliterated_characters("こんにちは", clean("こんにちは"))
    # What the cleaner is for: case, numbers, abbreviations, ASCII symbols.
    assert transliterated_characters("Dr. Smith paid $5 & left.", clean("Dr. Smith paid $5 & left.")) == []


def test_long_text_gets_durations_without_a_dense_alignment():
    """ESPnet's Text2Speech derives durations from att_w in time cubic in the text length and its CLI draws
    it: above att_w_max_elements the model returns the durations alone (it always returns them)."""
    model = tiny_glow_wavegan(att_w_max_elements=10_000).eval()
    text, durations = torch.randint(2, 20, (500,)), torch.full((500,), 3)
    with torch.no_grad():
        long = model.inference(text, durations=durations, noise_scale=0.0)
        short = model.inference(text[:20], durations=durations[:20], noise_scale=0.0)
    assert "att_w" not in long and int(long["duration"].sum()) == 1500 and long["wav"].numel() == 1500 * 256
    assert short["att_w"].shape == (60, 20) and torch.equal(short["att_w"].sum(dim=0).long(), durations[:20])


def test_very_long_text_is_decoded_in_chunks():
    from test_streaming_and_batching import perturbed_model, relative_error

    model = perturbed_model("ljspeech", "hifigan")  # weights off their initial values: the seams must hold
    model.decode_chunk_frames = 300
    text = torch.randint(2, 20, (3000,))
    durations = torch.full((3000,), 2)
    with torch.no_grad():
        chunked = model.inference(text, durations=durations, noise_scale=0.0)["wav"]
        model.decode_chunk_frames = 0
        whole = model.inference(text, durations=durations, noise_scale=0.0)["wav"]
    assert chunked.numel() == whole.numel() == 6000 * 256
    # The decoder's receptive field is shorter than the 32-frame context: seams are exact
    # up to float rounding, relative to the waveform's RMS.
    assert relative_error(chunked, whole) < 1e-5


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
    config["tts_conf"]["wavegan_params"] = yaml.safe_load((wavegan_exp / "config.yaml").read_text())["tts_conf"]["generator_params"]
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


def test_wav_scp_pipes_are_read_and_a_failing_command_is_named(tmp_path):
    """Kaldi pipes (cmd |): read as audio; a failing command named with its exit status and its last error line."""
    from espnet2_glow_wavegan.recipe.format_wav import read_entry

    good = LJ_WAVS / "LJ001-0002.wav"
    audio, fs = read_entry("a", f"cat {good} |")
    assert fs == 22050 and np.array_equal(audio, sf.read(good, dtype="float32", always_2d=True)[0])
    with pytest.raises(DataError, match=r"utterance 'b': the command of its wav.scp entry 'false \|' failed with "
                                        r"exit status 1 \(it wrote nothing to standard error\)"):
        read_entry("b", "false |")
    with pytest.raises(DataError, match=r"failed with exit status 2: .*no-such-file.flac"):
        read_entry("c", "cat no-such-file.flac; exit 2 |")
    with pytest.raises(DataError, match=r"utterance 'd': the command .* wrote no audio that soundfile can read \(6 bytes"):
        read_entry("d", "echo hello |")


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
    # Stage 5 warns, naming the utterance, about text the cleaner transliterates.
    odd = tmp_path / "odd_text"
    odd.write_text("u1 HELLO.\nu7 SEE §§§ BELOW.\n", encoding="utf-8")
    proc = subprocess.run(base[:-3] + ["--cleaner", "tacotron", "--text", str(odd)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "utterance u7: the text cleaner replaced characters" in proc.stderr and "'§'" in proc.stderr
    assert "utterance u1" not in proc.stderr
