"""Speed, memory and size of glow_wavegan against ESPnet's VITS, measured in one run.

    .venv/bin/python benchmarks/benchmark_tts.py                # paper-size LJSpeech configs, CPU
    .venv/bin/python benchmarks/benchmark_tts.py --tiny         # tiny configs (CI smoke test)
    .venv/bin/python benchmarks/benchmark_tts.py --device cuda  # the same on a GPU

Each measurement runs in its own subprocess (so peak RSS is per measurement) on the same
inputs: random weights (the configs' architectures), token sequences of 20/80/250 tokens
with every token forced to 4 latent frames, so both systems synthesise the same amount of
audio and an untrained duration predictor flatters neither. Synthesis: batch 1, median of
--runs after --warmup; RTF = time / audio seconds. Variants: as trained (weight norm,
ESPnet's decoder forward); "optimized" (weight norm folded, tiled float32 decoder, see
espnet2_glow_wavegan.wavegan.tiled_decoding); "bf16" (the same with a bfloat16 decoder).
The VITS variants get the same decoder treatment, so the table also reads like for like;
each variant's deviation from its unoptimised output is measured on the same input.
Training: one discriminator + generator turn pair (ESPnet's GANTrainer step, Adam updates
included) on random audio, at a realistic batch (4 x 6 s; LJSpeech utterances average 6.6 s)
and the short one earlier reports used (2 x 2 s): the WaveGAN stage with segment-first
encoding (default) and with the whole-utterance encoding it replaced, the prior stage from
stored latents (default) and from the waveform, and ESPnet's VITS. Writes
benchmarks/results/benchmark.{md,json}.
"""

import argparse
import copy
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "egs2/ljspeech/tts1/conf/tuning"
LENGTHS = {"short": 20, "medium": 80, "long": 250}
FRAMES_PER_TOKEN = 4
VOCAB = 60


def load(name):
    import yaml

    return copy.deepcopy(yaml.safe_load((CONF / name).read_text()))


def build(system, tiny):
    import torch
    from espnet2.gan_tts.vits import VITS

    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN
    from espnet2_glow_wavegan.wavegan.wavegan_vae import WaveGANVAE

    suffix = "_tiny" if tiny else ""
    decoder = "_istft" if "istft" in system else ""  # the iSTFT (Vocos-style) decoder configs
    torch.manual_seed(0)
    if system.startswith("wavegan_vae"):
        conf = load(f"train_wavegan_vae{decoder}{suffix}.yaml")["tts_conf"]
        conf["generator_params"]["encode_segment_window"] = system != "wavegan_vae_whole"
        return WaveGANVAE(idim=VOCAB, odim=1, **conf)
    if system.startswith("glow"):
        conf = load(f"train_glow_wavegan{suffix}.yaml")["tts_conf"]
        # The WaveGAN's settings, as the recipe's stage 7c passes them from the WaveGAN's config.
        conf["wavegan_params"] = load(f"train_wavegan_vae{decoder}{suffix}.yaml")["tts_conf"]["generator_params"]
        conf["speech_input"] = "waveform" if system == "glow_prior_waveform" else "posterior_stats"
        model = GlowWaveGAN(idim=VOCAB, odim=1, **conf)
        # Its WaveGAN from a wavegan_vae, as --init_param gives it (training checks that).
        model.generator.wavegan.load_state_dict(build(f"wavegan_vae{decoder}", tiny).generator.state_dict())
        return model
    conf = load(f"train_vits{suffix}.yaml")
    odim = conf["feats_extract_conf"]["n_fft"] // 2 + 1
    return VITS(idim=VOCAB, odim=odim, **conf["tts_conf"])


def couplings_with_weights(model, seed=1):
    """Give the flow's couplings small random output layers, as training does.

    Fresh couplings are the identity (zero output layers), which onnxruntime computes measurably
    faster than a trained flow; torch's time does not depend on the weights.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for step in model.generator.prior.flow.flows:
            if hasattr(step, "output_conv"):
                w = step.output_conv.weight
                w.copy_(torch.randn(w.shape, generator=generator) * 0.01)
    return model


SYSTEMS = ("glow_wavegan", "glow_wavegan_optimized", "glow_wavegan_bf16", "glow_wavegan_istft",
           "glow_wavegan_istft_optimized", "vits", "vits_optimized", "vits_bf16")
# Measured as trained; every other system is one of these with optimize_for_inference applied.
AS_TRAINED = ("glow_wavegan", "glow_wavegan_istft", "vits")
LABELS = {
    "glow_wavegan": "glow_wavegan (as trained)",
    "glow_wavegan_optimized": "glow_wavegan, optimize_for_inference() float32",
    "glow_wavegan_bf16": "glow_wavegan, optimize_for_inference(bfloat16 decoder)",
    "glow_wavegan_istft": "glow_wavegan, iSTFT decoder (as trained)",
    "glow_wavegan_istft_optimized": "glow_wavegan, iSTFT decoder, optimize_for_inference() float32",
    "vits": "ESPnet VITS (as shipped)",
    "vits_optimized": "VITS + our float32 decoder path",
    "vits_bf16": "VITS + our bfloat16 decoder path",
}
TRAINING = {
    "wavegan_vae": "wavegan_vae (stage 1), segment-first encoding (default)",
    "wavegan_vae_whole": "wavegan_vae (stage 1), whole-utterance encoding (before)",
    "wavegan_vae_istft": "wavegan_vae (stage 1), iSTFT decoder, segment-first",
    "glow_prior_stored": "glow_wavegan prior (stage 2), stored latents (default)",
    "glow_prior_waveform": "glow_wavegan prior (stage 2), waveform encoded every step",
    "vits": "ESPnet VITS",
}
# Training batches: utterances x seconds. Tokens per item: 20 per second of audio.
TRAIN_BATCHES = {"4x6": (4, 6.0), "2x2": (2, 2.0)}


def optimize(model, system):
    """Apply the variant's synthesis optimisations in place (as ``tts_inference --optimize_for_inference``)."""
    from espnet2_glow_wavegan.espnet_patches import optimize_for_synthesis

    optimize_for_synthesis(model, "bfloat16" if system.endswith("_bf16") else "float32")


def count(module):
    return sum(p.numel() for p in module.parameters())


def measure(args):
    """Child process: one measurement, printed as JSON."""
    import torch

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build(args.system, args.tiny).to(device)
    result = {}
    if args.task in ("synthesis", "deviation"):
        model.eval()
        n = LENGTHS[args.length]
        text = torch.randint(2, VOCAB - 1, (n,), device=device)
        durations = torch.full((n,), FRAMES_PER_TOKEN, device=device)

        def synthesize():
            torch.manual_seed(0)
            return model.inference(text, durations=durations, noise_scale=0.667)["wav"].float()

    if args.task == "synthesis":
        with torch.inference_mode():
            if args.system not in AS_TRAINED:
                optimize(model, args.system)
            times = []
            for i in range(args.warmup + args.runs):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                wav = synthesize()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= args.warmup:
                    times.append(time.perf_counter() - start)
        audio = wav.numel() / model.fs
        result.update(seconds=statistics.median(times), audio_seconds=audio, rtf=statistics.median(times) / audio)
    elif args.task == "deviation":
        # Own process, so the unoptimised reference run does not count in the variant's peak RSS.
        with torch.inference_mode():
            reference = synthesize()
            optimize(model, args.system)
            error = synthesize() - reference
        result.update(max_abs_deviation=error.abs().max().item(),
                      relative_rms_deviation=(error.pow(2).mean() / reference.pow(2).mean()).sqrt().item())
    else:
        model.train()
        batch, seconds = TRAIN_BATCHES[args.train_batch]
        fs, tokens = model.fs, int(20 * seconds)
        speech = torch.randn(batch, int(seconds * fs), device=device) * 0.1
        text = torch.randint(2, VOCAB - 1, (batch, tokens), device=device)
        data = dict(text=text, text_lengths=torch.full((batch,), tokens, device=device), speech=speech,
                    speech_lengths=torch.full((batch,), speech.size(1), device=device))
        if args.system == "vits":
            from espnet2.tts.feats_extract.linear_spectrogram import LinearSpectrogram

            conf = load(f"train_vits{'_tiny' if args.tiny else ''}.yaml")["feats_extract_conf"]
            feats, feats_lengths = LinearSpectrogram(**conf).to(device)(speech, data["speech_lengths"])
            data.update(feats=feats, feats_lengths=feats_lengths)
        if args.system == "glow_prior_stored":
            # What the recipe's stage 7b stores, once per utterance: not part of a step.
            with torch.no_grad():
                mean, log_std, mask = model.generator.wavegan.encoder(speech, data["speech_lengths"])
            data.update(speech=torch.cat([mean, log_std], dim=1).transpose(1, 2),
                        speech_lengths=mask.sum(dim=(1, 2)).long())
        optims = [torch.optim.AdamW([p for p in m.parameters() if p.requires_grad] or [torch.zeros(1, requires_grad=True)], lr=1e-4)
                  for m in (model.generator, model.discriminator)]
        times = []
        for i in range(args.warmup + args.train_runs):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for forward_generator, optim in ((False, optims[1]), (True, optims[0])):
                out = model(**data, forward_generator=forward_generator)
                optim.zero_grad()
                out["loss"].backward()
                optim.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
        result.update(seconds=statistics.median(times))
    result["peak_rss_mb"] = peak_rss_mb()
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(result))


def peak_rss_mb() -> float:
    """This process's peak resident memory.

    Linux keeps ``ru_maxrss`` across exec, so a child would report at least its parent's
    peak at fork time; ``VmHWM`` belongs to the process's own address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args, **kw):
    cmd = [sys.executable, __file__, "--child", "--device", args.device, "--threads", str(args.threads),
           "--runs", str(args.runs), "--train_runs", str(args.train_runs), "--warmup", str(args.warmup)]
    cmd += ["--tiny"] if args.tiny else []
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"benchmark child {kw} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def parameter_table(tiny):
    vits = build("vits", tiny)
    g = vits.generator
    table = {}
    for name, system in (("glow_wavegan", "glow_wavegan"), ("glow_wavegan (iSTFT decoder)", "glow_wavegan_istft")):
        glow = build(system, tiny)
        p, w = glow.generator.prior, glow.generator.wavegan
        wavegan_stage = build(system.replace("glow_wavegan", "wavegan_vae"), tiny)  # its discriminator trains there
        table[name] = {"text encoder + duration": count(p.text_encoder) + count(p.stats_proj) + count(p.duration_predictor),
                       "flow": count(p.flow), "decoder": count(w.decoder), "encoder (training only)": count(w.encoder),
                       "discriminator (training only)": count(wavegan_stage.discriminator)}
    return {
        **table,
        "vits": {"text encoder + duration": count(g.text_encoder) + count(g.duration_predictor), "flow": count(g.flow),
                 "decoder": count(g.decoder), "encoder (training only)": count(g.posterior_encoder),
                 "discriminator (training only)": count(vits.discriminator)},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--train_runs", type=int, default=3, help="timed training steps (after --warmup)")
    parser.add_argument("--lengths", nargs="+", choices=list(LENGTHS), default=list(LENGTHS),
                        help="synthesis inputs to measure (the smoke test takes one)")
    parser.add_argument("--train_batches", nargs="+", choices=list(TRAIN_BATCHES), default=list(TRAIN_BATCHES))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS),
                        help="synthesis systems to measure (vits is the reference of the speed column)")
    parser.add_argument("--train_systems", nargs="+", choices=list(TRAINING), default=list(TRAINING),
                        help="training steps to measure (vits is the reference)")
    parser.add_argument("--skip_training", action="store_true")
    parser.add_argument("--skip_synthesis", action="store_true")
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--length", help=argparse.SUPPRESS)
    parser.add_argument("--train_batch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args)
        return
    if "vits" not in args.systems or "vits" not in args.train_systems:
        parser.error("--systems and --train_systems must include vits, the reference")
    results = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                           "device": args.device, "threads": args.threads, "configs": "tiny" if args.tiny else "paper-size LJSpeech"},
               "synthesis": {}, "training": {}, "parameters": parameter_table(args.tiny)}
    if not args.skip_synthesis:
        for length in args.lengths:
            for system in args.systems:
                results["synthesis"].setdefault(length, {})[system] = child(args, system=system, task="synthesis", length=length)
                print(length, system, results["synthesis"][length][system], flush=True)
        results["deviation"] = {system: child(args, system=system, task="deviation", length="medium")
                                for system in args.systems if system not in AS_TRAINED}
        print("deviation", results["deviation"], flush=True)
    if not args.skip_training:
        for train_batch in args.train_batches:
            for system in args.train_systems:
                results["training"].setdefault(train_batch, {})[system] = child(
                    args, system=system, task="training", train_batch=train_batch)
                print("train", train_batch, system, results["training"][train_batch][system], flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "benchmark.json").write_text(json.dumps(results, indent=2) + "\n")
    md = render(results)
    (args.out_dir / "benchmark.md").write_text(md)
    print(md)


def render(r):
    m = r["machine"]
    out = [f"Machine: {m['platform']}, {m['processor']}, device {m['device']}, {m['threads']} threads; configs: {m['configs']}.\n"]
    rows = r["synthesis"]
    if rows:
        lengths = list(rows)
        audio = " / ".join(f"{rows[length]['vits']['audio_seconds']:.1f}" for length in lengths)
        out += [f"| synthesis RTF (batch 1; {' / '.join(lengths)}: {audio} s of audio) | "
                + " | ".join(lengths) + " | speed vs ESPnet VITS | deviation from unoptimised, medium (rel. RMS / max abs) | peak RSS [MB] |",
                "|---|" + "---|" * len(lengths) + "---|---|---|"]
        for system in rows[lengths[0]]:
            cells = [rows[length][system] for length in lengths]
            speed = " / ".join(f"{rows[length]['vits']['rtf'] / rows[length][system]['rtf']:.2f}x" for length in lengths)
            dev = r["deviation"].get(system)
            deviation = f"{dev['relative_rms_deviation']:.1e} / {dev['max_abs_deviation']:.1e}" if dev else "(reference)"
            out.append(f"| {LABELS[system]} | " + " | ".join(f"{c['rtf']:.3f}" for c in cells)
                       + f" | {speed} | {deviation} | {max(c['peak_rss_mb'] for c in cells):.0f} |")
    if r["training"]:
        batches = list(r["training"])
        out += ["", "| training step (D + G turn), seconds / vs VITS / peak RSS [MB] | "
                + " | ".join(f"batch {b.replace('x', ' x ')} s" for b in batches) + " |", "|---|" + "---|" * len(batches)]
        for system in r["training"][batches[0]]:
            label = TRAINING[system]
            cells = []
            for b in batches:
                t = r["training"][b]
                cells.append(f"{t[system]['seconds']:.2f} s / {t[system]['seconds'] / t['vits']['seconds']:.2f}x"
                             f" / {t[system]['peak_rss_mb']:.0f}")
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += ["", "| parameters [M] | " + " | ".join(r["parameters"]["vits"]) + " |", "|---|" + "---|" * len(r["parameters"]["vits"])]
    for system, row in r["parameters"].items():
        out.append(f"| {system} | " + " | ".join(f"{v / 1e6:.2f}" for v in row.values()) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
