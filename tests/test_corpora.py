"""The bundled mini corpora have the layout, rates and speaker split of the real datasets."""

import re

import numpy as np
import soundfile as sf

from conftest import CORPORA

LJ = CORPORA / "mini_ljspeech" / "LJSpeech-1.1"
AISHELL = CORPORA / "mini_aishell3"
NEW_VOICE = CORPORA / "mini_new_voice" / "LJSpeech-1.1"


def test_mini_ljspeech_layout_and_audio():
    lines = (LJ / "metadata.csv").read_text(encoding="utf-8").splitlines()
    assert 35 <= len(lines) <= 45
    ids = []
    for line in lines:
        utt, raw, normalized = line.split("|")
        assert re.fullmatch(r"LJ\d{3}-\d{4}", utt)
        assert raw.strip() and normalized.strip()
        ids.append(utt)
        info = sf.info(LJ / "wavs" / f"{utt}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert 0.8 < info.duration < 5.0
    assert ids == sorted(ids)
    # The raw column carries numbers and abbreviations for the text cleaner.
    assert any(re.search(r"\d", line.split("|")[1]) for line in lines)
    assert any(not re.search(r"\d", line.split("|")[2]) and re.search(r"\d", line.split("|")[1]) for line in lines)
    wav, _ = sf.read(LJ / "wavs" / f"{ids[0]}.wav")
    assert np.abs(wav).max() > 0.05  # real speech, not silence


def _metadata(root):
    return [line.split("|") for line in (root / "metadata.csv").read_text(encoding="utf-8").splitlines()]


def test_mini_new_voice_is_another_voice_saying_other_sentences_with_known_symbols():
    from espnet2.text.cleaner import TextCleaner

    rows = _metadata(NEW_VOICE)
    assert len(rows) == 30
    for utt, _, _ in rows:
        info = sf.info(NEW_VOICE / "wavs" / f"{utt}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    old = _metadata(LJ)
    assert not {r[2] for r in rows} & {r[2] for r in old} and not {r[0] for r in rows} & {r[0] for r in old}
    clean = TextCleaner("tacotron")
    known = {c for _, raw, _ in old[:-8] for c in clean(raw)}  # its training sentences (8 held out)
    assert {c for _, raw, _ in rows for c in clean(raw)} <= known  # a mini_ljspeech model can read them
    # another voice: a higher pitch than mini_ljspeech's en-us (median F0 of the louder frames)
    import librosa

    def median_f0(path):
        wav, fs = sf.read(path)
        f0 = librosa.yin(wav, fmin=60, fmax=400, sr=fs)
        loud = librosa.feature.rms(y=wav)[0][: len(f0)] > 0.02
        return np.median(f0[: len(loud)][loud])

    assert median_f0(NEW_VOICE / "wavs" / f"{rows[0][0]}.wav") > 1.3 * median_f0(LJ / "wavs" / f"{old[0][0]}.wav")


def _content(split, corpus=AISHELL):
    rows = {}
    for line in (corpus / split / "content.txt").read_text(encoding="utf-8").splitlines():
        name, transcript = line.split("\t")
        tokens = transcript.split()
        hanzi, pinyin = tokens[0::2], tokens[1::2]
        assert len(hanzi) == len(pinyin) and all(re.fullmatch(r"[a-z]+[1-5]", p) for p in pinyin)
        rows[name] = (hanzi, pinyin)
    return rows


def test_mini_aishell3_layout_rates_and_unseen_test_speaker():
    speakers = {}
    for split in ("train", "test"):
        rows = _content(split)
        for name in rows:
            spk = name[:7]
            info = sf.info(AISHELL / split / "wav" / spk / name)
            assert (info.samplerate, info.channels) == (44100, 1)
            assert 0.5 < info.duration < 5.0
            speakers.setdefault(split, set()).add(spk)
    assert len(speakers["train"]) + len(speakers["test"] - speakers["train"]) >= 4
    assert speakers["test"] - speakers["train"], "the test split needs a speaker unseen in train"


def test_total_size_is_small():
    total = sum(p.stat().st_size for p in CORPORA.rglob("*") if p.is_file())
    assert total < 14 * 1024 * 1024  # four corpora, 12.7 MB


def test_mini_aishell3_new_speaker_is_one_unseen_speaker_with_known_phones():
    new = CORPORA / "mini_aishell3_new_speaker"
    old_phones = {p for split in ("train", "test") for _, pinyin in _content(split).values() for p in pinyin}
    for split, count in (("train", 6), ("test", 2)):
        rows = _content(split, new)
        assert len(rows) == count and {name[:7] for name in rows} == {"SSB0016"}
        assert {p for _, pinyin in rows.values() for p in pinyin} <= old_phones  # a mini_aishell3 model reads them
        for name in rows:
            info = sf.info(new / split / "wav" / "SSB0016" / name)
            assert (info.samplerate, info.channels) == (44100, 1) and 0.5 < info.duration < 5.0
