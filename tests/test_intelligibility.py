"""Is the speech understood: Whisper WER/CER (offline), the normaliser, and speaker similarity."""

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import CORPORA
from espnet2_glow_wavegan import intelligibility

LJ = CORPORA / "mini_ljspeech/LJSpeech-1.1"


def test_normalisation_matches_what_whisper_writes_to_what_the_text_says():
    norm = intelligibility.normalize_english
    assert norm("The 7 neighbours' boats, Mr. Smith's 3rd!") == norm("the seven neighbors boats mr smiths third")
    assert norm("Rain fell softly -- on the old stone bridge.") == "rain fell softly on the old stone bridge"
    assert intelligibility.normalize_characters("广州， 今天 很热。") == "广州今天很热"


def test_error_counts_are_exact_edit_counts_over_the_reference():
    counts = intelligibility.error_counts("The old clock struck eleven.", "the cold clock struck eleven times")
    assert counts == {"word_edits": 2, "words": 5, "char_edits": 6, "chars": 23}  # cold: +c; times: +5 letters
    assert intelligibility.rates(counts) == {"wer": 0.4, "cer": 6 / 23}
    # Corpus level: all edits over all reference words, not the mean of the sentences' rates.
    short = intelligibility.error_counts("Yes.", "No.")
    assert intelligibility.corpus_rates([counts, short])["wer"] == pytest.approx(3 / 6)
    assert intelligibility.error_counts("广州很热", "广州不热", "zh") == {"char_edits": 1, "chars": 4}
    with pytest.raises(ValueError, match="no words"):
        intelligibility.error_counts("!!!", "hello")


def test_speaker_similarity_compares_with_the_speakers_other_recordings():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    recordings = {"a1": a, "a2": a, "b1": b, "b2": np.array([0.6, 0.8])}
    generated = {"a1": b, "b1": b}
    out = intelligibility.speaker_similarities(generated, recordings, {"a1": "A", "a2": "A", "b1": "B", "b2": "B"})
    assert out["a1"] == {"spk_similarity": 0.0, "spk_similarity_recordings": 1.0}
    assert out["b1"]["spk_similarity"] == pytest.approx(0.8) and out["b1"]["spk_similarity_recordings"] == pytest.approx(0.8)


def test_no_speaker_embedding_without_speech_and_nan_similarity():
    encoder = intelligibility.SpeakerEncoder()
    wav, fs = sf.read(LJ / "wavs/LJ001-0003.wav")
    assert encoder.embed(np.zeros(fs), fs) is None  # silence: nothing to embed
    speech = encoder.embed(wav, fs)
    assert speech is not None and speech.shape == (256,)
    out = intelligibility.speaker_similarities({"a1": None, "a2": speech}, {"a1": speech, "a2": speech},
                                               {"a1": "A", "a2": "A"})
    assert np.isnan(out["a1"]["spk_similarity"]) and out["a1"]["spk_similarity_recordings"] == pytest.approx(1.0)
    assert out["a2"]["spk_similarity"] == pytest.approx(1.0)


def test_whisper_understands_recordings_and_not_noise():
    asr = intelligibility.WhisperAsr(num_threads=1)
    wav, fs = sf.read(LJ / "wavs/LJ001-0003.wav")
    text = "Rain fell softly on the old stone bridge."
    assert intelligibility.rates(intelligibility.error_counts(text, asr.transcribe(wav, fs)))["wer"] <= 0.25
    noise = np.random.default_rng(0).normal(0, 0.1, fs * 2)
    assert intelligibility.rates(intelligibility.error_counts(text, asr.transcribe(noise, fs)))["wer"] >= 0.75
    # Garbled speech makes Whisper fall back to sampling: seeded, the same audio reads the same every time.
    garbled = wav * np.sign(np.sin(np.arange(wav.size) / 7.0))
    assert len({asr.transcribe(garbled, fs) for _ in range(3)}) == 1


def test_an_english_only_model_refuses_mandarin():
    with pytest.raises(intelligibility.ScorerUnavailable, match="English-only"):
        intelligibility.WhisperAsr(language="zh")
    with pytest.raises(intelligibility.ScorerUnavailable, match="no model.bin"):
        intelligibility.WhisperAsr(CORPORA)


def _scp_and_text(tmp_path, utts):
    lines = {line.split("|")[0]: line.split("|")[2] for line in (LJ / "metadata.csv").read_text().splitlines()}
    scp, text = tmp_path / "wav.scp", tmp_path / "text"
    scp.write_text("".join(f"{u} {LJ / 'wavs' / u}.wav\n" for u in utts))
    text.write_text("".join(f"{u} {lines[u]}\n" for u in utts))
    return scp, text


def test_stage9_scores_wer_beside_the_recordings_floor(tmp_path):
    """Generated = recordings: the WER equals its floor; a silent output is not understood at all."""
    from espnet2_glow_wavegan.recipe.score import main

    utts = ["LJ001-0003", "LJ001-0005"]
    scp, text = _scp_and_text(tmp_path, utts)
    main(["--ref_scp", str(scp), "--gen_scp", str(scp), "--out_dir", str(tmp_path / "same"), "--text", str(text),
          "--asr_threads", "1"])
    same = json.loads((tmp_path / "same/summary.json").read_text())
    assert same["wer"] == same["wer_recordings"] and same["cer"] == same["cer_recordings"] and same["wer"] <= 0.2
    assert same["asr"].startswith("Whisper tiny.en")
    hyps = dict(line.split(" ", 1) for line in (tmp_path / "same/asr_text").read_text().splitlines())
    assert sorted(hyps) == utts and "bridge" in hyps["LJ001-0003"].lower()

    silent = tmp_path / "silent"
    silent.mkdir()
    for u in utts:
        sf.write(silent / f"{u}.wav", np.zeros(22050), 22050)
    gen = tmp_path / "gen.scp"
    gen.write_text("".join(f"{u} {silent / u}.wav\n" for u in utts))
    main(["--ref_scp", str(scp), "--gen_scp", str(gen), "--out_dir", str(tmp_path / "silent_scores"),
          "--text", str(text), "--asr_threads", "1"])
    scores = json.loads((tmp_path / "silent_scores/summary.json").read_text())
    assert scores["cer"] >= 0.9 and scores["wer_recordings"] == same["wer_recordings"]
    assert (tmp_path / "silent_scores/utt2wer").is_file()


def test_stage9_says_when_it_cannot_score_a_language(tmp_path, capsys):
    from espnet2_glow_wavegan.recipe.score import main

    scp, text = _scp_and_text(tmp_path, ["LJ001-0003"])
    main(["--ref_scp", str(scp), "--gen_scp", str(scp), "--out_dir", str(tmp_path / "zh"), "--text", str(text),
          "--asr_language", "zh"])
    summary = json.loads((tmp_path / "zh/summary.json").read_text())
    assert "cer" not in summary and "English-only" in summary["asr"] and "mcd" in summary
    assert "no WER/CER" in capsys.readouterr().out


def test_stage9_speaker_similarity_needs_the_speakers(tmp_path):
    from espnet2_glow_wavegan.recipe.score import main

    scp, _ = _scp_and_text(tmp_path, ["LJ001-0003", "LJ001-0005", "LJ001-0007"])
    with pytest.raises(SystemExit):
        main(["--ref_scp", str(scp), "--gen_scp", str(scp), "--out_dir", str(tmp_path / "s"), "--speaker_similarity", "true"])
    utt2spk = tmp_path / "utt2spk"
    utt2spk.write_text("LJ001-0003 LJ\nLJ001-0005 LJ\nLJ001-0007 LJ\n")
    main(["--ref_scp", str(scp), "--gen_scp", str(scp), "--out_dir", str(tmp_path / "s"), "--speaker_similarity", "true",
          "--utt2spk", str(utt2spk)])
    summary = json.loads((tmp_path / "s/summary.json").read_text())
    assert summary["spk_similarity"] == summary["spk_similarity_recordings"] > 0.7  # one voice
