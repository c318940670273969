"""Stage 1 of egs2/aishell3/tts1: AISHELL-3 content.txt -> Kaldi data dirs.

Writes ``<out>/{train_no_dev,dev,test}``: ``dev`` holds out the last
``num_dev`` training utterances (ESPnet: 250); ``test`` is the official test
split, whose speakers never appear in training. Text is the hanzi of each
line (the pinyin column is dropped; ``pypinyin_g2p_phone`` makes phones).
With ``--trim_silence`` leading/trailing silence is cut through a ``segments``
file (the audio is not rewritten).
"""

import argparse
from pathlib import Path

from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, utf8_lines, write_data_dir


def read_content(split_dir: Path):
    content = split_dir / "content.txt"
    if not content.exists():
        raise DataError(f"{content}: missing file (is {split_dir.parent} an AISHELL-3 folder?)")
    rows = []
    for number, line in utf8_lines(content):
        line = line.strip()
        if not line:
            continue
        name, _, transcript = line.partition("\t")
        if not name.endswith(".wav") or not transcript:
            raise DataError(f"{content}:{number}: expected '<name>.wav<TAB>hanzi pinyin ...', got {line!r}")
        tokens = transcript.split()
        hanzi = "".join(tokens[0::2])
        utt, spk = name[: -len(".wav")], name[:7]
        if not hanzi:
            raise DataError(f"{content}:{number}: utterance '{utt}' has empty text")
        wav = split_dir / "wav" / spk / name
        if not wav.exists():
            raise DataError(f"{content}:{number}: utterance '{utt}': audio {wav} does not exist")
        rows.append((utt, spk, str(wav.resolve()), hanzi))
    return sorted(rows)


def silence_segments(rows, top_db: float):
    import librosa
    import soundfile as sf

    segments = {}
    for utt, _, wav, _ in rows:
        audio, fs = sf.read(wav, dtype="float32", always_2d=True)
        _, (start, end) = librosa.effects.trim(audio[:, 0], top_db=top_db)
        pad = int(0.05 * fs)  # keep 50 ms around the speech
        start, end = max(0, start - pad), min(len(audio), end + pad)
        segments[utt] = f"{utt}_rec {start / fs:.3f} {end / fs:.3f}"
    return segments


def prepare(corpus: Path, out: Path, num_dev: int, trim_silence: bool, top_db: float) -> None:
    train, test = read_content(corpus / "train"), read_content(corpus / "test")
    if len(train) <= num_dev:
        raise DataError(f"{corpus}/train: {len(train)} utterances, too few to hold out {num_dev}")
    splits = {"train_no_dev": train[:-num_dev], "dev": train[-num_dev:], "test": test}
    for name, rows in splits.items():
        segments = silence_segments(rows, top_db) if trim_silence else None
        write_data_dir(
            out / name,
            # With segments, wav.scp is keyed by recording; one recording per utterance.
            wav_scp={(f"{u}_rec" if segments else u): w for u, _, w, _ in rows},
            text={u: t for u, _, _, t in rows},
            utt2spk={u: s for u, s, _, _ in rows},
            segments=segments,
        )
        print(f"{out / name}: {len(rows)} utterances, {len({s for _, s, _, _ in rows})} speakers")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="AISHELL-3 folder with train/ and test/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num_dev", type=int, default=250)
    parser.add_argument("--trim_silence", type=lambda s: s.lower() == "true", default=False)
    parser.add_argument("--top_db", type=float, default=30.0, help="silence threshold for --trim_silence")
    args = parser.parse_args(argv)
    try:
        prepare(args.corpus, args.out, args.num_dev, args.trim_silence, args.top_db)
    except DataError as e:
        die(str(e))


if __name__ == "__main__":
    main()
