"""Everything this project needs a GPU to check, in one run (under 8 minutes on one modern GPU).

    .venv/bin/python benchmarks/gpu_check.py                   # paper-size LJSpeech configs on cuda:0
    .venv/bin/python benchmarks/gpu_check.py --device cpu --tiny --steps 1   # smoke run of the script itself

Needs only the repository and its install (bash tools/install.sh): the bundled mini corpus is
the audio, the models have random weights. Writes benchmarks/results/gpu.{md,json}:

1. Training steps of every stage and phase (paper-size configs, batch --batch x 6 s of audio):
   wavegan_vae with the HiFi-GAN and the iSTFT decoder, the inner-GAN (mel encoder), the
   glow_wavegan prior from stored latents and from the waveform, the joint phase, and ESPnet's
   VITS, each in float32 and under mixed precision as ESPnet's GANTrainer runs it (its
   ``use_amp``: CUDA autocast in float16 with a GradScaler; and bfloat16 where the GPU has
   it): median step time (synchronised), peak GPU memory, speed-up, and the host
   synchronisations of one step (``torch.cuda.set_sync_debug_mode``).
2. ESPnet's own trainer with ``--use_amp true`` on the GPU: stock ``gan_tts_train`` trains the
   tiny WaveGAN, then the tiny prior phase from it, one short epoch each.
3. Latent extraction (recipe stage 7b's CLI) with ``--device cuda`` against the same on the CPU.
4. Synthesis of short / medium / long inputs (20 / 80 / 250 tokens, 4 frames each) with both
   decoders and ESPnet's VITS: median synchronised time, real-time factor.
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_tts  # noqa: E402  (model builders of the CPU benchmark)

CORPUS = ROOT / "corpora/mini_ljspeech/LJSpeech-1.1"
TINY_CONF = ROOT / "egs2/ljspeech/tts1/conf/tuning"
TRAINING = {
    "wavegan_vae": "wavegan_vae, HiFi-GAN decoder (stage 1)",
    "wavegan_vae_istft": "wavegan_vae, iSTFT decoder (stage 1)",
    "inner_gan": "inner-GAN: wavegan_vae with the mel encoder",
    "glow_prior_stored": "glow_wavegan prior from stored latents (stage 2)",
    "glow_prior_waveform": "glow_wavegan prior, waveform encoded every step",
    "glow_joint": "glow_wavegan joint phase (decoder fine-tuned)",
    "vits": "ESPnet VITS",
}
SYNTHESIS = {"glow_wavegan": "glow_wavegan, HiFi-GAN decoder", "glow_wavegan_istft": "glow_wavegan, iSTFT decoder",
             "vits": "ESPnet VITS"}


def build(system, tiny, device):
    """A model of the recipe's configs with random weights (the CPU benchmark's builders, plus two)."""
    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN
    from espnet2_glow_wavegan.wavegan.wavegan_vae import WaveGANVAE

    if system == "inner_gan":
        conf = benchmark_tts.load(f"train_inner_gan{'_tiny' if tiny else ''}.yaml")["tts_conf"]
        torch.manual_seed(0)
        return WaveGANVAE(idim=benchmark_tts.VOCAB, odim=1, **conf).to(device)
    if system == "glow_joint":
        suffix = "_tiny" if tiny else ""
        conf = benchmark_tts.load(f"train_glow_wavegan{suffix}.yaml")["tts_conf"]
        vae_conf = benchmark_tts.load(f"train_wavegan_vae{suffix}.yaml")["tts_conf"]
        conf.update(training_phase="joint", speech_input="waveform", wavegan_params=vae_conf["generator_params"],
                    discriminator_params=vae_conf["discriminator_params"])
        torch.manual_seed(0)
        model = GlowWaveGAN(idim=benchmark_tts.VOCAB, odim=1, **conf)
        vae = benchmark_tts.build("wavegan_vae", tiny)
        model.generator.wavegan.load_state_dict(vae.generator.state_dict())
        model.discriminator.load_state_dict(vae.discriminator.state_dict())
        return model.to(device)
    return benchmark_tts.build(system, tiny).to(device)


def training_batch(model, system, batch, seconds, device, tiny):
    fs, tokens = model.fs, int(20 * seconds)
    torch.manual_seed(0)
    speech = torch.randn(batch, int(seconds * fs), device=device) * 0.1
    data = dict(text=torch.randint(2, benchmark_tts.VOCAB - 1, (batch, tokens), device=device),
                text_lengths=torch.full((batch,), tokens, device=device), speech=speech,
                speech_lengths=torch.full((batch,), speech.size(1), device=device))
    if system == "vits":
        from espnet2.tts.feats_extract.linear_spectrogram import LinearSpectrogram

        conf = benchmark_tts.load(f"train_vits{'_tiny' if tiny else ''}.yaml")["feats_extract_conf"]
        feats, feats_lengths = LinearSpectrogram(**conf).to(device)(speech, data["speech_lengths"])
        data.update(feats=feats, feats_lengths=feats_lengths)
    if system == "glow_prior_stored":
        with torch.no_grad():
            mean, log_std, mask = model.generator.wavegan.encoder(speech, data["speech_lengths"])
        data.update(speech=torch.cat([mean, log_std], dim=1).transpose(1, 2), speech_lengths=mask.sum(dim=(1, 2)).long())
    return data


def step(model, data, optimizers, scaler, amp_dtype, device):
    """One batch as espnet2/train/gan_trainer.py runs it: the discriminator turn, then the generator's,
    each under autocast when mixed, scaled backward, unscale, step and update of that turn's optimiser."""
    for forward_generator in (False, True):
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = model(**data, forward_generator=forward_generator)
        optimizer = optimizers[out["optim_idx"]]
        if scaler is not None:
            scaler.scale(out["loss"]).backward()
            scaler.unscale_(optimizer)
            scaler.step(optimizer)
            scaler.update()
        else:
            out["loss"].backward()
            optimizer.step()
        for o in optimizers:
            o.zero_grad()
    return out


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def host_syncs(run, device):
    """Synchronising CUDA calls during ``run()`` (CUDA's sync debug mode, as warnings)."""
    if device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def measure_training(system, precision, args, device):
    amp_dtype = {"float32": None, "amp_float16": torch.float16, "amp_bfloat16": torch.bfloat16}[precision]
    model = build(system, args.tiny, device).train()
    data = training_batch(model, system, args.batch, 6.0, device, args.tiny)
    optimizers = [torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
                  for m in (model.generator, model.discriminator)]
    # ESPnet's use_amp: a GradScaler (float16 needs it; with bfloat16 it is harmless, as in ESPnet).
    scaler = torch.amp.GradScaler(device.type) if amp_dtype is not None else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, out = [], None
    for i in range(args.warmup + args.steps):
        synchronize(device)
        start = time.perf_counter()
        out = step(model, data, optimizers, scaler, amp_dtype, device)
        synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    syncs = host_syncs(lambda: step(model, data, optimizers, scaler, amp_dtype, device), device)
    result = dict(seconds=statistics.median(times), syncs_per_step=syncs,
                  finite=bool(all(torch.isfinite(torch.as_tensor(v)).all() for v in out["stats"].values())),
                  generator_loss=float(out["stats"]["generator_loss"]))
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    del model, optimizers
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def measure_synthesis(system, length, args, device):
    model = build(system, args.tiny, device).eval()
    n = benchmark_tts.LENGTHS[length]
    text = torch.randint(2, benchmark_tts.VOCAB - 1, (n,), device=device)
    durations = torch.full((n,), benchmark_tts.FRAMES_PER_TOKEN, device=device)
    times = []
    with torch.inference_mode():
        for i in range(2 + args.synthesis_runs):
            torch.manual_seed(0)
            synchronize(device)
            start = time.perf_counter()
            wav = model.inference(text, durations=durations, noise_scale=0.667)["wav"]
            synchronize(device)
            if i >= 2:
                times.append(time.perf_counter() - start)
    audio = wav.numel() / model.fs
    return dict(seconds=statistics.median(times), audio_seconds=audio, rtf=statistics.median(times) / audio)


def run(cmd, cwd, timeout=600):
    proc = subprocess.run([sys.executable, *cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=dict(__import__("os").environ, HF_HUB_OFFLINE="1"))
    return proc


def mini_corpus_dirs(root: Path, n_train=24, n_valid=4):
    """Kaldi data dirs (characters) from the bundled mini corpus."""
    rows = [line.split("|") for line in (CORPUS / "metadata.csv").read_text(encoding="utf-8").splitlines()]
    chars = sorted({c for _, _, text in rows for c in text})
    tokens = root / "tokens.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", *(c if c != " " else "<space>" for c in chars), "<sos/eos>"]) + "\n")
    for name, part in (("train", rows[:n_train]), ("valid", rows[n_train:n_train + n_valid])):
        d = root / name
        d.mkdir(parents=True)
        (d / "wav.scp").write_text("".join(f"{u} {CORPUS / 'wavs' / (u + '.wav')}\n" for u, _, _ in part))
        (d / "text").write_text("".join(f"{u} {t}\n" for u, _, t in part), encoding="utf-8")
    return tokens


def stock_amp_training(args, device):
    """ESPnet's trainer with --use_amp true on the device: tiny WaveGAN, then the prior phase from it."""
    ngpu = "1" if device.type == "cuda" else "0"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tokens = mini_corpus_dirs(root)
        data = []
        for split in ("train", "valid"):
            data += [f"--{split}_data_path_and_name_and_type", f"{root}/{split}/text,text,text",
                     f"--{split}_data_path_and_name_and_type", f"{root}/{split}/wav.scp,speech,sound"]
        common = ["--use_preprocessor", "true", "--token_type", "char", "--token_list", str(tokens), *data]
        shapes = []
        for split in ("train", "valid"):
            keys = root / f"{split}.keys"
            keys.write_text("".join(line.split()[0] + "\n" for line in (root / split / "wav.scp").read_text().splitlines()))
            shapes.append(keys)
        config = TINY_CONF / "train_wavegan_vae_tiny.yaml"
        stats = run(["-m", "espnet2.bin.gan_tts_train", "--config", str(config), *common, "--collect_stats", "true",
                     "--train_shape_file", str(shapes[0]), "--valid_shape_file", str(shapes[1]),
                     "--output_dir", str(root / "stats")], root)
        if stats.returncode:
            return dict(ok=False, stage="collect_stats", error=stats.stderr[-2000:])
        shape_args = []
        for split in ("train", "valid"):
            for name in ("text_shape", "speech_shape"):
                shape_args += [f"--{split}_shape_file", str(root / "stats" / split / name)]
        result = {}
        for name, config, extra in (
            ("wavegan_vae", config, []),
            ("glow_wavegan_prior", TINY_CONF / "train_glow_wavegan_tiny.yaml",
             ["--tts_conf", "speech_input=waveform", "--init_param",
              f"{root / 'wavegan' / '1epoch.pth'}:tts.generator:tts.generator.wavegan"]),
        ):
            start = time.perf_counter()
            proc = run(["-m", "espnet2.bin.gan_tts_train", "--config", str(config), *common, *shape_args, "--ngpu", ngpu,
                        "--use_amp", "true", "--max_epoch", "1", "--num_iters_per_epoch", "10",
                        "--output_dir", str(root / ("wavegan" if name == "wavegan_vae" else "prior")), *extra], root)
            summary = [line for line in proc.stderr.splitlines() if "1epoch results" in line]
            result[name] = dict(ok=proc.returncode == 0 and bool(summary), seconds=time.perf_counter() - start,
                                results=summary[-1][-600:] if summary else None,
                                error=None if proc.returncode == 0 else proc.stderr[-2000:])
            if not result[name]["ok"]:
                break
        return result


def extraction(args, device):
    """Stage 7b's CLI on the device and on the CPU, same random WaveGAN: time and agreement."""
    import kaldiio
    import numpy as np

    config = TINY_CONF / ("train_wavegan_vae_tiny.yaml" if args.tiny else "train_wavegan_vae.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tokens = mini_corpus_dirs(root)
        printed = run(["-m", "espnet2.bin.gan_tts_train", "--config", str(config), "--token_list", str(tokens),
                       "--print_config"], root)
        if printed.returncode:
            return dict(ok=False, error=printed.stderr[-2000:])
        (root / "config.yaml").write_text(printed.stdout)
        torch.save({f"tts.{k}": v for k, v in benchmark_tts.build("wavegan_vae", args.tiny).state_dict().items()},
                   root / "model.pth")
        result = {}
        for dev in (device.type, "cpu"):
            start = time.perf_counter()
            proc = run(["-m", "espnet2_glow_wavegan.recipe.extract_latents", "extract", "--train_config",
                        str(root / "config.yaml"), "--model_file", str(root / "model.pth"), "--wav_scp",
                        str(root / "train/wav.scp"), "--out", str(root / dev / "stats"), "--device", dev,
                        "--num_threads", "2"], root)
            result[dev] = dict(ok=proc.returncode == 0, seconds=time.perf_counter() - start,
                               error=None if proc.returncode == 0 else proc.stderr[-2000:])
        if all(r["ok"] for r in result.values()) and device.type != "cpu":
            a = dict(kaldiio.load_scp(str(root / device.type / "stats.scp")))
            b = dict(kaldiio.load_scp(str(root / "cpu" / "stats.scp")))
            result["max_abs_difference"] = float(max(np.abs(a[k] - b[k]).max() for k in b))
            result["utterances"] = len(b)
        return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny configs (a smoke run of this script)")
    parser.add_argument("--batch", type=int, default=16, help="utterances of 6 s per training batch")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--synthesis_runs", type=int, default=5)
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    device = torch.device(args.device)
    began = time.perf_counter()
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    precisions = ["float32", "amp_float16"] + (["amp_bfloat16"] if bf16 or device.type == "cpu" else [])
    report = dict(machine=dict(platform=platform.platform(), torch=torch.__version__, cuda=torch.version.cuda,
                               device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                               bf16=bf16, configs="tiny" if args.tiny else "paper-size LJSpeech", batch=args.batch),
                  training={}, synthesis={})
    for system in TRAINING:
        for precision in precisions:
            try:
                report["training"].setdefault(system, {})[precision] = measure_training(system, precision, args, device)
            except Exception as e:  # recorded, and the rest still runs
                report["training"].setdefault(system, {})[precision] = dict(error=f"{type(e).__name__}: {e}"[:2000])
            print("train", system, precision, report["training"][system][precision], flush=True)
    report["stock_amp_training"] = stock_amp_training(args, device)
    print("stock --use_amp true", report["stock_amp_training"], flush=True)
    report["extraction"] = extraction(args, device)
    print("extraction", report["extraction"], flush=True)
    for length in benchmark_tts.LENGTHS:
        for system in SYNTHESIS:
            report["synthesis"].setdefault(length, {})[system] = measure_synthesis(system, length, args, device)
            print("synthesis", length, system, report["synthesis"][length][system], flush=True)
    report["seconds"] = time.perf_counter() - began
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    text = render(report)
    (args.out_dir / "gpu.md").write_text(text)
    print(text)


def render(r):
    m = r["machine"]
    lines = [f"# GPU check: {m['device']} (torch {m['torch']}, CUDA {m['cuda']}), {m['configs']} configs",
             "", f"Run time {r['seconds']:.0f} s. Training batch: {m['batch']} x 6 s of audio.", ""]
    precisions = sorted({p for rows in r["training"].values() for p in rows}, key=["float32", "amp_float16", "amp_bfloat16"].index)
    vits = r["training"].get("vits", {})
    lines += ["| training step (D + G turn) | " + " | ".join(
        f"{p}: s / vs VITS / peak GPU MB / host syncs" for p in precisions) + " | AMP speed-up |",
              "|---|" + "---|" * (len(precisions) + 1)]
    for system, label in TRAINING.items():
        rows = r["training"].get(system, {})
        cells = []
        for p in precisions:
            c = rows.get(p, {})
            if "seconds" not in c:
                cells.append(f"failed: {c.get('error', '-')[:80]}")
                continue
            ratio = c["seconds"] / vits[p]["seconds"] if "seconds" in vits.get(p, {}) else float("nan")
            cells.append(f"{c['seconds']:.3f} / {ratio:.2f}x / {c.get('peak_gpu_mb', float('nan')):.0f} / "
                         f"{c['syncs_per_step'] if c['syncs_per_step'] is not None else '-'}"
                         + ("" if c["finite"] else " (non-finite!)"))
        speedups = [f"{rows['float32']['seconds'] / rows[p]['seconds']:.2f}x ({p[4:]})" for p in precisions[1:]
                    if "seconds" in rows.get(p, {}) and "seconds" in rows.get("float32", {})]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {', '.join(speedups) or '-'} |")
    stock = r["stock_amp_training"]
    lines += ["", "Stock `gan_tts_train --use_amp true` on the device (tiny configs, one 10-step epoch each): "
              + ", ".join(f"{k}: {'ok' if v.get('ok') else 'FAILED'} ({v.get('seconds', 0):.0f} s)"
                          for k, v in stock.items() if isinstance(v, dict))]
    ex = r["extraction"]
    if "max_abs_difference" in ex:
        lines += ["", f"Latent extraction CLI: {ex['utterances']} utterances in {ex[next(iter(ex))]['seconds']:.1f} s on "
                  f"the device (process included) against {ex['cpu']['seconds']:.1f} s on the CPU; largest difference "
                  f"of a stored statistic: {ex['max_abs_difference']:.1e}."]
    lengths = list(r["synthesis"])
    lines += ["", "| synthesis RTF (batch 1, synchronised) | " + " | ".join(
        f"{length} ({r['synthesis'][length]['vits']['audio_seconds']:.1f} s)" for length in lengths) + " | speed vs VITS |",
              "|---|" + "---|" * (len(lengths) + 1)]
    for system, label in SYNTHESIS.items():
        cells = [f"{r['synthesis'][length][system]['rtf']:.4f}" for length in lengths]
        speed = " / ".join(f"{r['synthesis'][length]['vits']['rtf'] / r['synthesis'][length][system]['rtf']:.2f}x"
                           for length in lengths)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {speed} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
