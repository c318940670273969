"""Does a trained WaveGAN's decoder use its latent? Copy synthesis against the recording, by loudness.

    .venv/bin/python benchmarks/latent_use.py --train_config exp/tts_wavegan_vae/config.yaml \\
        --model_file exp/tts_wavegan_vae/10epoch.pth [--model_file ...] --wav_scp dump/raw/eval1/wav.scp

A decoder that ignores z renders every frame with the same spectrum: its copy synthesis has
the same log-mel level in the quietest and the loudest tenth of the recording's frames. MCD
says that copy synthesis is poor, not why; this says whether the output follows the input at
all. For each model it prints:

- the posterior's signal-to-noise: the median over channels of the mean's standard deviation over
  time, against the median posterior standard deviation (the noise sampled in training);
- the correlation over frames of the recording's and the copy synthesis' mean log-mel (0: the
  output ignores the input);
- per decile of the recording's frame loudness: the recording's and the copy synthesis' mean
  log-mel and their L1 distance (the training mel loss / lambda_mel: the same analysis, ESPnet's
  MelSpectrogramLoss settings of the config).

Any model file of the experiment loads: ``<n>epoch.pth`` as the trainer saved it, or an average.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

from espnet2_glow_wavegan.recipe.extract_latents import load_wavegan
from espnet2_glow_wavegan.recipe.kaldi_dir import read_table


def frame_log_mels(wavegan, analysis, wav):
    """(recording, copy synthesis) log-mel (T, n_mels) and the posterior's (signal, noise)."""
    speech = torch.from_numpy(wav)[None]
    with torch.inference_mode():
        z, mean, log_std, mask = wavegan.generator.encode(speech, torch.tensor([speech.size(1)]), sample=False)
        generated = wavegan.generator.decode(z)[:, 0, : speech.size(1)]
        real, fake = analysis(speech)[0][0], analysis(generated)[0][0]
    return real.numpy(), fake.numpy(), float(mean[0].std(dim=-1).median()), float(log_std.exp().median())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_config", type=Path, required=True, help="config.yaml of the wavegan_vae experiment")
    parser.add_argument("--model_file", type=Path, action="append", required=True)
    parser.add_argument("--wav_scp", type=Path, required=True)
    parser.add_argument("--utterances", type=int, default=5, help="the first N of wav_scp")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from espnet2.gan_tts.hifigan.loss import MelSpectrogramLoss

    mel_params = yaml.safe_load(args.train_config.read_text())["tts_conf"]["mel_loss_params"]
    analysis = MelSpectrogramLoss(**mel_params).wav_to_mel
    utterances = sorted(read_table(args.wav_scp).items())[: args.utterances]
    wavs = [sf.read(path, dtype="float32")[0] for _, path in utterances]
    print(f"{len(wavs)} utterances of {args.wav_scp}\n")
    summary = ["| model | posterior signal / noise | frame loudness correlation | mel L1 |", "|---|---|---|---|"]
    details = []
    for model_file in args.model_file:
        wavegan = load_wavegan(args.train_config, model_file, "cpu")
        frames = [frame_log_mels(wavegan, analysis, wav) for wav in wavs]
        real = np.concatenate([f[0] for f in frames])
        fake = np.concatenate([f[1] for f in frames])
        signal, noise = np.median([f[2] for f in frames]), np.median([f[3] for f in frames])
        loud_real, loud_fake = real.mean(-1), fake.mean(-1)
        correlation = float(np.corrcoef(loud_real, loud_fake)[0, 1]) if loud_fake.std() > 0 else 0.0
        summary.append(f"| {model_file} | {signal:.3g} / {noise:.3g} | {correlation:.2f} | {np.abs(real - fake).mean():.2f} |")
        details += [f"\n{model_file}: by decile of the recording's frame loudness", "",
                    "| decile | recording log-mel | copy synthesis log-mel | L1 |", "|---|---|---|---|"]
        order = np.argsort(loud_real)
        for decile, frames_in in enumerate(np.array_split(order, 10)):
            details.append(f"| {decile + 1} | {loud_real[frames_in].mean():.1f} | {loud_fake[frames_in].mean():.1f} "
                           f"| {np.abs(real[frames_in] - fake[frames_in]).mean():.2f} |")
    print("\n".join(summary + details))


if __name__ == "__main__":
    sys.exit(main())
