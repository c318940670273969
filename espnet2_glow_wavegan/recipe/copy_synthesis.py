"""Copy synthesis with a trained wavegan_vae: waveform -> encoder (or mel) -> decoder -> waveform.

    python -m espnet2_glow_wavegan.recipe.copy_synthesis --train_config exp/tts_wavegan_vae/config.yaml \\
        --model_file exp/tts_wavegan_vae/train.total_count.ave.pth --wav_scp dump/raw/eval1/wav.scp \\
        --out_dir exp/tts_wavegan_vae/copy_synthesis/eval1

The reconstruction half of the paper's comparison: the learned latent (encoder type
``learned``, decoded from the posterior mean) against the mel bridge (encoder type ``mel``,
the inner-GAN). Writes ``<out_dir>/wav/<utt>.wav`` and ``<out_dir>/wav/wav.scp`` (score them
with ``espnet2_glow_wavegan.recipe.score``) and logs each utterance's real-time factor in the
line format stage 9 reads back.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import soundfile as sf
import torch

from espnet2_glow_wavegan.recipe.extract_latents import load_wavegan
from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, read_table, write_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_config", type=Path, required=True, help="config.yaml of the wavegan_vae experiment")
    parser.add_argument("--model_file", type=Path, required=True)
    parser.add_argument("--wav_scp", type=Path, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--num_threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (copy_synthesis) %(levelname)s: %(message)s")
    torch.set_num_threads(args.num_threads)
    try:
        wavegan = load_wavegan(args.train_config, args.model_file, "cpu")
        if wavegan.spks or wavegan.spk_embed_dim:
            raise DataError(f"{args.train_config}: copy synthesis here is for universal WaveGANs (no speaker inputs)")
        out = args.out_dir / "wav"
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for utt, path in read_table(args.wav_scp).items():
            try:
                wav, fs = sf.read(path, dtype="float32")
            except Exception as e:
                raise DataError(f"{args.wav_scp}: utterance '{utt}': cannot read {path}: {e}") from None
            if fs != wavegan.fs or wav.ndim != 1:
                raise DataError(f"{args.wav_scp}: utterance '{utt}' ({path}) is not mono {wavegan.fs} Hz audio")
            start = time.perf_counter()
            with torch.inference_mode():
                generated = wavegan.inference(speech=torch.from_numpy(wav))["wav"].numpy()
            elapsed = time.perf_counter() - start
            logging.info(f"{utt}: RTF {elapsed * fs / len(generated):.4f} ({len(generated)} samples at {fs} Hz in {elapsed:.4f} s)")
            sf.write(out / f"{utt}.wav", generated, fs, subtype="PCM_16")
            written[utt] = str((out / f"{utt}.wav").resolve())
        write_table(out / "wav.scp", written)
        print(f"{out / 'wav.scp'}: {len(written)} copy-synthesised utterances")
    except DataError as e:
        die(str(e))


if __name__ == "__main__":
    sys.exit(main())
