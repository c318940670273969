"""Long-form synthesis stays linear: a 5000-character paragraph against one sentence, RTF.

    .venv/bin/python benchmarks/long_form.py            # tiny LJSpeech glow_wavegan, CPU, 2 threads

Builds the tiny LJSpeech glow_wavegan of the recipe (random weights, the duration predictor
set to about 5 frames a character, so both inputs give speech-like lengths), writes its
config with ESPnet's own trainer (``--print_config``) and its weights, then synthesises the
same one sentence and a 5000-character paragraph through the two paths a user has: stock
``Text2Speech`` (in this process) and the CLI wrapper ``espnet2_glow_wavegan.bin.tts_inference``
(a subprocess; its RTF lines are read back). The tiny model makes the fixed costs small, so
anything worse than linear in the text length shows. Writes benchmarks/results/long_form.{md,json}.
"""

import argparse
import copy
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "egs2/ljspeech/tts1/conf/tuning"
SENTENCE = "The old clock in the hall struck eleven as the last guests walked out into the quiet, rainy street."
WORDS = ("the quick brown fox jumps over the lazy dog while seven bright stars watch from a cold and "
         "silent sky above the sleeping town").split()


def paragraph(chars: int) -> str:
    words, text = [], ""
    while len(text) < chars:
        words.append(WORDS[len(words) % len(WORDS)])
        text = " ".join(words).capitalize() + "."
    return text[: chars - 1] + "."


def write_model(workdir: Path):
    """config.yaml (by ESPnet's trainer) and model.pth of the tiny glow_wavegan over a character token list."""
    import torch

    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN

    tokens = ["<blank>", "<unk>", "<space>", *sorted(set("".join(WORDS).upper() + SENTENCE.upper()) - {" "}), "<sos/eos>"]
    (workdir / "tokens.txt").write_text("\n".join(tokens) + "\n")
    conf = yaml.safe_load((CONF / "train_glow_wavegan_tiny.yaml").read_text())
    printed = subprocess.run(
        [sys.executable, "-m", "espnet2.bin.gan_tts_train", "--print_config", "--config", str(CONF / "train_glow_wavegan_tiny.yaml"),
         "--token_type", "char", "--token_list", str(workdir / "tokens.txt"), "--cleaner", "tacotron", "--g2p", "none"],
        capture_output=True, text=True, check=True,
    ).stdout
    config = yaml.safe_load(printed)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(0)
    model = GlowWaveGAN(idim=len(tokens), odim=1, **copy.deepcopy(conf["tts_conf"]))
    with torch.no_grad():
        model.generator.prior.duration_predictor.linear.bias.fill_(math.log(6.0))  # ~5 frames a character
    torch.save({f"tts.{k}": v for k, v in model.state_dict().items()}, workdir / "model.pth")


def stock_text2speech(workdir: Path, texts, runs: int):
    import torch
    from espnet2.bin.tts_inference import Text2Speech

    t2s = Text2Speech(train_config=workdir / "config.yaml", model_file=workdir / "model.pth")
    out = {}
    for name, text in texts.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            with torch.no_grad():
                wav = t2s(text)["wav"]
            times.append(time.perf_counter() - start)
        seconds = min(times)
        out[name] = dict(characters=len(text), seconds=seconds, audio_seconds=wav.numel() / t2s.fs,
                         rtf=seconds * t2s.fs / wav.numel())
    return out


def cli(workdir: Path, texts):
    data = workdir / "text"
    data.write_text("".join(f"{name} {text}\n" for name, text in texts.items()))
    proc = subprocess.run(
        [sys.executable, "-m", "espnet2_glow_wavegan.bin.tts_inference", "--ngpu", "0", "--data_path_and_name_and_type",
         f"{data},text,text", "--train_config", str(workdir / "config.yaml"), "--model_file", str(workdir / "model.pth"),
         "--output_dir", str(workdir / "cli")],
        capture_output=True, text=True,
    )
    if proc.returncode:
        raise SystemExit(f"CLI failed:\n{proc.stderr[-3000:]}")
    lines = re.findall(r"RTF ([0-9.eE+-]+) \((\d+) samples at (\d+) Hz in ([0-9.eE+-]+) s\)", proc.stderr)
    out = {}
    for name, (rtf, samples, fs, seconds) in zip(texts, lines):  # the CLI decodes in key order
        out[name] = dict(characters=len(texts[name]), seconds=float(seconds), audio_seconds=int(samples) / int(fs), rtf=float(rtf))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--characters", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="Text2Speech: best of N")
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    texts = {"a_sentence": SENTENCE, "b_paragraph": paragraph(args.characters)}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_model(workdir)
        results = {"text2speech": stock_text2speech(workdir, texts, args.runs), "cli": cli(workdir, texts)}
    lines = [f"Tiny LJSpeech glow_wavegan (random weights, ~5 frames a character), CPU, {args.threads} threads.\n",
             "| path | sentence: chars / audio s / RTF | paragraph: chars / audio s / RTF | RTF ratio |", "|---|---|---|---|"]
    for path, r in results.items():
        s, p = r["a_sentence"], r["b_paragraph"]
        r["rtf_ratio"] = p["rtf"] / s["rtf"]
        lines.append(f"| {path} | {s['characters']} / {s['audio_seconds']:.1f} / {s['rtf']:.4f} | "
                     f"{p['characters']} / {p['audio_seconds']:.1f} / {p['rtf']:.4f} | {r['rtf_ratio']:.2f} |")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "long_form.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / "long_form.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
