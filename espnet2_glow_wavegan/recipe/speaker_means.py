"""Stage 10 helper: mean speaker embedding per speaker, packed with the model.

    python -m espnet2_glow_wavegan.recipe.speaker_means --scp dump/spembs/train/spembs.scp \
        --utt2spk dump/raw/train/utt2spk [--scp ... --utt2spk ...] --out exp/tts_x/spk_embeds.npz

Every ``--scp`` goes with the ``--utt2spk`` at the same position; the recipe gives the training
set and the test sets, so that the zip holds the voices of the unseen test speakers too. ``--base``
(an adapted model): the pretrained model's table, whose speakers the new data does not name are
kept, so the adapted zip still voices them.
"""

import argparse
from pathlib import Path

import kaldiio
import numpy as np

from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, read_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scp", action="append", required=True)
    parser.add_argument("--utt2spk", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True, help=".npz: speaker -> embedding")
    parser.add_argument("--base", type=Path, help="a pretrained model's spk_embeds.npz to extend")
    args = parser.parse_args(argv)
    if len(args.scp) != len(args.utt2spk):
        die(f"give one --utt2spk per --scp ({len(args.scp)} scp, {len(args.utt2spk)} utt2spk)")
    per_speaker = {}
    try:
        for scp, utt2spk_file in zip(args.scp, args.utt2spk):
            utt2spk = read_table(utt2spk_file)
            for utt, vec in kaldiio.load_scp(scp).items():
                if utt not in utt2spk:
                    raise DataError(f"{utt2spk_file}: no speaker for utterance '{utt}' of {scp}")
                per_speaker.setdefault(utt2spk[utt], []).append(np.asarray(vec, dtype=np.float32))
    except DataError as e:
        die(str(e))
    means = dict(np.load(args.base)) if args.base else {}
    kept = len(set(means) - set(per_speaker))
    means.update({spk: np.mean(vecs, axis=0) for spk, vecs in per_speaker.items()})
    np.savez(args.out, **dict(sorted(means.items())))
    print(f"{args.out}: {len(means)} speakers" + (f" ({kept} from {args.base})" if args.base else ""))


if __name__ == "__main__":
    main()
