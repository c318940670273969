"""Copy-synthesis quality of the two WaveGAN decoders after the same training time.

    .venv/bin/python benchmarks/decoder_quality.py --minutes 15     # per decoder, paper-size LJSpeech configs

Trains ``wavegan_vae`` with each decoder (``hifigan``, the paper's, and ``istft``) from the
recipe's paper-size configs for the same wall-clock time on the bundled LJSpeech mini corpus:
the recipe's 32 training utterances, the same seed, the same batches in the same order, the
configs' optimiser settings. Then both copy-synthesise the 8 held-out utterances (the recipe's
dev and eval1) from the posterior mean, scored with the recipe's stage-9 scorer (MCD, log-F0
RMSE, V/UV error; espnet2_glow_wavegan.scoring) and the training's mel L1 loss. Writes
benchmarks/results/decoder_quality.{md,json} and a log-mel picture of one held-out utterance
(reference and both decoders), decoder_quality.png.

A CPU budget of minutes is a tiny fraction of a real training run (hundreds of thousands of
steps on a GPU): the numbers say which decoder learns faster per second of this machine, not
which one sounds better when trained to the end.
"""

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "egs2/ljspeech/tts1/conf/tuning"
CORPUS = ROOT / "corpora/mini_ljspeech/LJSpeech-1.1"
DECODERS = {"hifigan": "train_wavegan_vae.yaml", "istft": "train_wavegan_vae_istft.yaml"}
HELD_OUT = 8  # the recipe's dev (4) and eval1 (4): the last utterances of metadata.csv


def corpus():
    ids = [line.split("|")[0] for line in (CORPUS / "metadata.csv").read_text(encoding="utf-8").splitlines()]
    audio = {}
    for utt in ids:
        wav, fs = sf.read(CORPUS / "wavs" / f"{utt}.wav", dtype="float32")
        assert fs == 22050, (utt, fs)
        audio[utt] = wav
    return ids[:-HELD_OUT], ids[-HELD_OUT:], audio


def build(decoder):
    from espnet2_glow_wavegan.wavegan.wavegan_vae import WaveGANVAE

    conf = copy.deepcopy(yaml.safe_load((CONF / DECODERS[decoder]).read_text()))
    torch.manual_seed(0)
    model = WaveGANVAE(idim=10, odim=1, **conf["tts_conf"])
    optims = [torch.optim.AdamW(module.parameters(), **conf[key])
              for module, key in ((model.generator, "optim_conf"), (model.discriminator, "optim2_conf"))]
    return model, optims


def train(decoder, train_ids, audio, seconds, batch, seed):
    model, (optim_g, optim_d) = build(decoder)
    model.train()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    steps, start, mel = 0, time.perf_counter(), []
    while time.perf_counter() - start < seconds:
        picked = rng.choice(len(train_ids), size=batch, replace=False)
        wavs = [torch.from_numpy(audio[train_ids[i]]) for i in picked]
        lengths = torch.tensor([len(w) for w in wavs])
        speech = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
        data = dict(text=torch.ones(batch, 1, dtype=torch.long), text_lengths=torch.ones(batch, dtype=torch.long),
                    speech=speech, speech_lengths=lengths)
        for forward_generator, optim in ((False, optim_d), (True, optim_g)):
            out = model(**data, forward_generator=forward_generator)
            optim.zero_grad()
            out["loss"].backward()
            optim.step()
        mel.append(float(out["stats"]["generator_mel_loss"]))
        steps += 1
    elapsed = time.perf_counter() - start
    print(f"{decoder}: {steps} steps in {elapsed:.0f} s, mel loss {np.mean(mel[:10]):.2f} -> {np.mean(mel[-10:]):.2f}",
          flush=True)
    return model.eval(), dict(steps=steps, seconds=elapsed, seconds_per_step=elapsed / steps,
                              train_mel_loss_first10=float(np.mean(mel[:10])), train_mel_loss_last10=float(np.mean(mel[-10:])))


def evaluate(model, held_out, audio):
    from espnet2_glow_wavegan.scoring import score_pair

    generated, scores, mel = {}, [], []
    with torch.no_grad():
        for utt in held_out:
            reference = torch.from_numpy(audio[utt])
            wav = model.inference(speech=reference)["wav"]
            generated[utt] = wav.numpy()
            scores.append(score_pair(audio[utt], generated[utt], 22050))
            # The training's mel L1 (lambda_mel not applied), over the whole utterance.
            mel.append(float(model.gan_loss.mel_loss(wav.view(1, 1, -1), reference.view(1, 1, -1))))
    summary = {k: float(np.nanmean([s[k] for s in scores])) for k in ("mcd", "log_f0_rmse", "vuv_error")}
    summary["mel_l1"] = float(np.mean(mel))
    return summary, generated


def picture(path, utt, reference, generated):
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("reference", reference)] + [(f"{d} decoder (copy synthesis)", wav[utt]) for d, wav in generated.items()]
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 2.6 * len(rows)), sharex=True)
    for ax, (title, wav) in zip(axes, rows):
        mel = librosa.feature.melspectrogram(y=wav, sr=22050, n_fft=1024, hop_length=256, n_mels=80)
        ax.imshow(np.log(np.maximum(mel, 1e-5)), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(f"{utt}: {title}")
        ax.set_ylabel("mel band")
    axes[-1].set_xlabel("frame (256 samples)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training time per decoder")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_ids, held_out, audio = corpus()
    results, generated = {}, {}
    for decoder in DECODERS:
        model, training = train(decoder, train_ids, audio, args.minutes * 60, args.batch, args.seed)
        summary, generated[decoder] = evaluate(model, held_out, audio)
        results[decoder] = dict(training=training, copy_synthesis=summary)
        print(decoder, summary, flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    picture(args.out_dir / "decoder_quality.png", held_out[0], audio[held_out[0]], generated)
    setup = dict(minutes_per_decoder=args.minutes, batch=args.batch, threads=args.threads, seed=args.seed,
                 train_utterances=len(train_ids), held_out=held_out, configs=DECODERS)
    (args.out_dir / "decoder_quality.json").write_text(json.dumps(dict(setup=setup, results=results), indent=2) + "\n")
    lines = [f"Copy synthesis of {len(held_out)} held-out mini-corpus utterances after {args.minutes:g} min of "
             f"training each (2-core CPU, {args.threads} threads, batch {args.batch}, paper-size configs).\n",
             "| decoder | steps | s / step | train mel loss, 45 x L1 (first -> last 10 steps) | MCD [dB] | log-F0 RMSE | V/UV err. | mel L1 |",
             "|---|---|---|---|---|---|---|---|"]
    for decoder, r in results.items():
        t, c = r["training"], r["copy_synthesis"]
        lines.append(f"| {decoder} | {t['steps']} | {t['seconds_per_step']:.2f} | {t['train_mel_loss_first10']:.1f} -> "
                     f"{t['train_mel_loss_last10']:.1f} | {c['mcd']:.2f} | {c['log_f0_rmse']:.3f} | {c['vuv_error']:.3f} "
                     f"| {c['mel_l1']:.3f} |")
    (args.out_dir / "decoder_quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
