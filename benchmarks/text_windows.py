"""What short text-encoder windows cost a trained voice: held-out paragraphs with the default windows and short ones.

    .venv/bin/python benchmarks/text_windows.py --exp_dir <race work>/exp/tts_glow_wavegan<variant> \
        --text <race work>/data/eval1/text

A stream's first audio waits for the text encoder's first window (docs/synthesis.md). With the default
windows (512 tokens and 64 of context each side) a sentence is one window, so its first audio grows with
it; with short windows (64 and 16) it does not (benchmarks/streaming.py). Every mode reads the model's
windows, so a stream still equals its one pass either way; what changes is the text states, which the
encoder's attention computes from less of the text. This measures that change on a trained model: the
held-out sentences joined into paragraphs of --sentences_per_paragraph, each synthesised deterministically
(noise_scale 0) with both settings through ESPnet's ``Text2Speech``; Whisper's WER and CER of each against
the text; and between the two: MCD and log-F0 RMSE (DTW alignment), the share of tokens whose duration
changed and the length ratio. Writes benchmarks/results/text_windows.{md,json}.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def paragraphs(text_file: Path, per_paragraph: int):
    """``[(keys, text)]``: the lines of a Kaldi ``text`` file joined ``per_paragraph`` at a time."""
    lines = [line.split(maxsplit=1) for line in text_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    groups = [lines[i : i + per_paragraph] for i in range(0, len(lines), per_paragraph)]
    return [([key for key, _ in group], " ".join(text for _, text in group)) for group in groups]


def synthesise(t2s, text: str, windows) -> dict:
    prior = t2s.model.tts.generator.prior
    saved = prior.synthesis_window_tokens, prior.synthesis_window_context
    prior.synthesis_window_tokens, prior.synthesis_window_context = windows
    try:
        out = t2s(text, decode_conf=dict(noise_scale=0.0))
    finally:
        prior.synthesis_window_tokens, prior.synthesis_window_context = saved
    return dict(wav=out["wav"].numpy(), durations=out["duration"].numpy())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exp_dir", type=Path, required=True, help="a trained glow_wavegan: config.yaml and the model")
    parser.add_argument("--model_file", default="train.total_count.ave.pth", help="in --exp_dir")
    parser.add_argument("--text", type=Path, required=True, help="a Kaldi text file of held-out sentences")
    parser.add_argument("--sentences_per_paragraph", type=int, default=3)
    parser.add_argument("--window_tokens", type=int, default=64)
    parser.add_argument("--window_context", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--report_name", default="text_windows")
    args = parser.parse_args(argv)

    import torch
    from espnet2.bin.tts_inference import Text2Speech

    from espnet2_glow_wavegan.intelligibility import WhisperAsr, corpus_rates, error_counts
    from espnet2_glow_wavegan.scoring import score_pair

    torch.set_num_threads(args.threads)
    t2s = Text2Speech(train_config=str(args.exp_dir / "config.yaml"), model_file=str(args.exp_dir / args.model_file))
    prior = t2s.model.tts.generator.prior
    settings = {"default": (prior.synthesis_window_tokens, prior.synthesis_window_context),
                "short": (args.window_tokens, args.window_context)}
    asr = WhisperAsr(num_threads=args.threads)
    counts = {name: [] for name in settings}
    rows = []
    with torch.no_grad():
        for keys, text in paragraphs(args.text, args.sentences_per_paragraph):
            outs = {name: synthesise(t2s, text, windows) for name, windows in settings.items()}
            row = dict(keys=keys, tokens=int(outs["default"]["durations"].size))
            for name, out in outs.items():
                hypothesis = asr.transcribe(out["wav"], t2s.fs)
                counts[name].append(error_counts(text, hypothesis))
                row[name] = dict(seconds=out["wav"].size / t2s.fs, hypothesis=hypothesis, **counts[name][-1])
            row["distance"] = score_pair(outs["default"]["wav"], outs["short"]["wav"], t2s.fs)
            row["durations_changed"] = float(np.mean(outs["default"]["durations"] != outs["short"]["durations"]))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    summary = {name: corpus_rates(c) for name, c in counts.items()}
    for key in ("mcd", "log_f0_rmse", "duration_ratio"):
        summary[key] = statistics.mean(r["distance"][key] for r in rows)
    summary["durations_changed"] = statistics.mean(r["durations_changed"] for r in rows)
    windowed = sum(r["tokens"] > args.window_tokens + 2 * args.window_context for r in rows)
    setup = dict(exp_dir=str(args.exp_dir), model_file=args.model_file, text=str(args.text), settings=settings,
                 paragraphs=len(rows), windowed_paragraphs=windowed, asr=asr.name,
                 tokens=[min(r["tokens"] for r in rows), max(r["tokens"] for r in rows)])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{args.report_name}.json").write_text(json.dumps(dict(setup=setup, summary=summary, rows=rows),
                                                                       indent=1) + "\n")
    short = f"{args.window_tokens} + {args.window_context} each side"
    lines = [f"Model: {args.exp_dir.name}/{args.model_file}; {len(rows)} paragraphs of {args.sentences_per_paragraph} "
             f"held-out sentences ({setup['tokens'][0]}-{setup['tokens'][1]} tokens; {windowed} longer than one short "
             f"window and its contexts), noise_scale 0; ASR: {asr.name}.", "",
             "| text windows | WER | CER |", "|---|---|---|"]
    for name, label in (("default", f"default ({settings['default'][0]} + {settings['default'][1]} each side: "
                                    "whole paragraphs)"), ("short", short)):
        lines.append(f"| {label} | {summary[name]['wer']:.3f} | {summary[name]['cer']:.3f} |")
    lines += ["", "| short against default | MCD [dB] | log-F0 RMSE | duration ratio | tokens whose duration changed |",
              "|---|---|---|---|---|",
              f"| mean over paragraphs | {summary['mcd']:.2f} | {summary['log_f0_rmse']:.3f} | "
              f"{summary['duration_ratio']:.3f} | {summary['durations_changed']:.1%} |"]
    (args.out_dir / f"{args.report_name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
