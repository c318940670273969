"""Stage 10 helper: mean speaker embedding per training speaker, packed with the model."""

import argparse
from pathlib import Path

import kaldiio
import numpy as np

from espnet2_glow_wavegan.recipe.kaldi_dir import read_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scp", required=True)
    parser.add_argument("--utt2spk", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help=".npz: speaker -> embedding")
    args = parser.parse_args(argv)
    utt2spk = read_table(args.utt2spk)
    per_speaker = {}
    for utt, vec in kaldiio.load_scp(args.scp).items():
        per_speaker.setdefault(utt2spk[utt], []).append(np.asarray(vec, dtype=np.float32))
    np.savez(args.out, **{spk: np.mean(vecs, axis=0) for spk, vecs in sorted(per_speaker.items())})
    print(f"{args.out}: {len(per_speaker)} speakers")


if __name__ == "__main__":
    main()
