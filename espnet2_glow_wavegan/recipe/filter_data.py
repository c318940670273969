"""Stage 4: copy a dumped data set keeping utterances of usable length and non-empty text."""

import argparse
import shutil
from pathlib import Path

from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, read_table, spk2utt, write_table

PER_UTT_FILES = ("wav.scp", "text", "utt2spk", "utt2num_samples", "utt2sid")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--dst", type=Path, required=True)
    parser.add_argument("--fs", type=int, required=True)
    parser.add_argument("--min_wav_duration", type=float, default=0.1)
    parser.add_argument("--max_wav_duration", type=float, default=20.0)
    args = parser.parse_args(argv)
    try:
        lengths = read_table(args.src / "utt2num_samples")
        text = read_table(args.src / "text")
        keep, dropped = set(), []
        for utt, n in lengths.items():
            seconds = int(n) / args.fs
            if not args.min_wav_duration <= seconds <= args.max_wav_duration:
                dropped.append(f"{utt} duration {seconds:.2f}s outside [{args.min_wav_duration}, {args.max_wav_duration}]")
            elif not text.get(utt, "").strip():
                dropped.append(f"{utt} empty or missing text")
            else:
                keep.add(utt)
        if not keep:
            raise DataError(f"{args.src}: no utterance left after length filtering ({len(dropped)} dropped)")
        args.dst.mkdir(parents=True, exist_ok=True)
        for name in PER_UTT_FILES:
            if (args.src / name).exists():
                table = read_table(args.src / name)
                write_table(args.dst / name, {u: v for u, v in table.items() if u in keep})
        write_table(args.dst / "spk2utt", spk2utt(read_table(args.dst / "utt2spk")))
        for name in ("feats_type",):
            if (args.src / name).exists():
                shutil.copy(args.src / name, args.dst / name)
        (args.dst / "dropped_utts").write_text("".join(d + "\n" for d in dropped), encoding="utf-8")
        print(f"{args.dst}: kept {len(keep)}, dropped {len(dropped)} (see dropped_utts)")
    except DataError as e:
        die(str(e))


if __name__ == "__main__":
    main()
