"""Stage 1 of egs2/ljspeech/tts1: LJSpeech-1.1 metadata.csv -> Kaldi data dirs.

Writes ``<out>/{tr_no_dev,dev,eval1}``; the last ``2 * num_heldout`` utterances
(in file order) become dev and eval1, as ESPnet's LJSpeech recipe (250 + 250).
"""

import argparse
from pathlib import Path

from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, utf8_lines, write_data_dir


def prepare(corpus: Path, out: Path, num_heldout: int, text_column: str) -> None:
    metadata = corpus / "metadata.csv"
    if not metadata.exists():
        raise DataError(f"{metadata}: missing file (is {corpus} an LJSpeech-1.1 folder?)")
    rows = []
    for number, line in utf8_lines(metadata):
        fields = line.split("|")
        if len(fields) != 3:
            raise DataError(f"{metadata}:{number}: expected 'ID|raw text|normalized text', got {line!r}")
        utt, raw_text, normalized = fields
        text = raw_text if text_column == "raw" else normalized
        if not text.strip():
            raise DataError(f"{metadata}:{number}: utterance '{utt}' has empty {text_column} text")
        wav = corpus / "wavs" / f"{utt}.wav"
        if not wav.exists():
            raise DataError(f"{metadata}:{number}: utterance '{utt}': audio {wav} does not exist")
        rows.append((utt, str(wav.resolve()), " ".join(text.split())))
    if len(rows) <= 2 * num_heldout:
        raise DataError(f"{metadata}: {len(rows)} utterances, too few to hold out 2 x {num_heldout}")
    splits = {
        "tr_no_dev": rows[: -2 * num_heldout],
        "dev": rows[-2 * num_heldout : -num_heldout],
        "eval1": rows[-num_heldout:],
    }
    for name, part in splits.items():
        write_data_dir(
            out / name,
            wav_scp={u: w for u, w, _ in part},
            text={u: t for u, _, t in part},
            utt2spk={u: "LJ" for u, _, _ in part},
        )
        print(f"{out / name}: {len(part)} utterances")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="the LJSpeech-1.1 folder")
    parser.add_argument("--out", type=Path, required=True, help="data folder to write into")
    parser.add_argument("--num_heldout", type=int, default=250, help="utterances in each of dev and eval1")
    parser.add_argument("--text_column", choices=["raw", "normalized"], default="raw",
                        help="metadata column to use (raw: numbers/abbreviations left to the text cleaner)")
    args = parser.parse_args(argv)
    try:
        prepare(args.corpus, args.out, args.num_heldout, args.text_column)
    except DataError as e:
        die(str(e))


if __name__ == "__main__":
    main()
