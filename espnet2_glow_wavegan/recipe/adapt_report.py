"""Before and after an adaptation (``tts.sh --pretrained_model``, stage 9): RESULTS_adapt.md.

    python -m espnet2_glow_wavegan.recipe.adapt_report --pretrained_dir exp/pretrained/<name> \\
        --tts_exp exp/tts_<tag> --inference_tag decode_train.total_count.ave --test_sets eval1 \\
        [--adapted_wavegan exp/tts_<tag>_decoder] [--scratch_exp exp/tts_<tag>_scratch] \\
        [--inference_config conf/decode.yaml] -- <stage 9 scoring options>

For each test set of the new voice, scored as stage 9 scores (WER/CER beside the recordings' own,
speaker similarity to the new voice's recordings, MCD, log-F0, DNSMOS with ``--dnsmos true``):

- the recordings (the ASR's floor and the recordings' own similarity to each other);
- copy synthesis through the pretrained WaveGAN: how well the kept WaveGAN reconstructs the new
  voice, which says whether ``--adapt_decoder true`` is needed; through the adapted one too;
- the pretrained model's TTS of the new voice's sentences (before), and the adapted model's
  (after, stage 8's decode dir, already scored by stage 9);
- with ``--scratch_exp`` (``tts.sh --scratch_baseline true``), the recipe's own configs trained from
  scratch on the same data for the same wall time (stage 7d).

Everything it writes is under ``<tts_exp>/adapt_report/<set>/`` and ``<tts_exp>/RESULTS_adapt.{md,json}``.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, read_table, write_table

COLUMNS = [("wer", "WER", "{:.3f}"), ("cer", "CER", "{:.3f}"), ("spk_similarity", "speaker sim.", "{:.3f}"),
           ("mcd", "MCD [dB]", "{:.2f}"), ("log_f0_rmse", "log-F0 RMSE", "{:.3f}"),
           ("dnsmos_ovrl", "DNSMOS OVRL", "{:.2f}"), ("dnsmos_p808", "P.808", "{:.2f}")]


def python_module(module, *args):
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True)
    if proc.returncode:
        raise DataError(f"{module} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def score(ref_dir: Path, gen_scp: Path, out: Path, options: list) -> dict:
    python_module("espnet2_glow_wavegan.recipe.score", "--ref_scp", ref_dir / "wav.scp", "--gen_scp", gen_scp,
                  "--out_dir", out, "--text", ref_dir / "text", "--speaker_similarity", "true",
                  "--utt2spk", ref_dir / "utt2spk", *options)
    return json.loads((out / "summary.json").read_text())


def copy_synthesis(wavegan_dir: Path, model: str, ref_dir: Path, out: Path) -> Path:
    python_module("espnet2_glow_wavegan.recipe.copy_synthesis", "--train_config", wavegan_dir / "config.yaml",
                  "--model_file", wavegan_dir / model, "--wav_scp", ref_dir / "wav.scp", "--out_dir", out)
    return out / "wav/wav.scp"


def tts(model_file: Path, train_config: Path, ref_dir: Path, out: Path, inference_config, speakers=()) -> Path:
    """A model that is not stage 8's (the pretrained one, the scratch baseline) reads the new voice's sentences,
    as stage 8 decodes; ``speakers``: its speaker inputs (``--data_path_and_name_and_type`` values)."""
    python_module("espnet2_glow_wavegan.bin.tts_inference", "--ngpu", "0",
                  "--data_path_and_name_and_type", f"{ref_dir / 'text'},text,text",
                  *[arg for value in speakers for arg in ("--data_path_and_name_and_type", value)],
                  "--model_file", model_file, "--train_config", train_config,
                  "--output_dir", out, *(["--config", inference_config] if inference_config else []))
    wavs = {p.stem: str(p.resolve()) for p in sorted((out / "wav").glob("*.wav"))}
    write_table(out / "wav/wav.scp", wavs)
    return out / "wav/wav.scp"


def report_set(args, dset: str) -> list:
    ref_dir = args.data_dir / dset
    if not (ref_dir / ".done").is_file():
        ref_dir = args.data_dir / "org" / dset
    for name in ("wav.scp", "text", "utt2spk"):
        if not (ref_dir / name).is_file():
            raise DataError(f"{ref_dir / name}: missing (stages 2-4 of the new voice's data first)")
    work = args.tts_exp / "adapt_report" / dset
    after = args.tts_exp / args.inference_tag / dset
    if not (after / "wav/wav.scp").is_file():
        raise DataError(f"{after}/wav/wav.scp: missing (stage 8 decodes the adapted model first)")
    rows = [("recordings", score(ref_dir, ref_dir / "wav.scp", work / "recordings/scores", args.score_options))]
    gen = copy_synthesis(args.pretrained_dir / "wavegan", "model.pth", ref_dir, work / "copy_synthesis_pretrained")
    rows.append(("copy synthesis, pretrained WaveGAN", score(ref_dir, gen, work / "copy_synthesis_pretrained/scores",
                                                             args.score_options)))
    if args.adapted_wavegan:
        gen = copy_synthesis(args.adapted_wavegan, args.adapted_wavegan_model, ref_dir, work / "copy_synthesis_adapted")
        rows.append(("copy synthesis, adapted WaveGAN", score(ref_dir, gen, work / "copy_synthesis_adapted/scores",
                                                              args.score_options)))
    # A multi-speaker model: the sentences' speaker embeddings, and for the pretrained model the ids it knows;
    # a new speaker is voiced as its unseen speakers are, through <unk> (0) and the embedding.
    embeddings = []
    if args.spembs_dir:
        scp = args.spembs_dir / ref_dir.relative_to(args.data_dir) / "spembs.scp"
        if not scp.is_file():
            raise DataError(f"{scp}: missing (stage 3 writes the speaker embeddings)")
        embeddings = [f"{scp},spembs,kaldi_ark"]
    before = list(embeddings)
    if args.use_sid:
        known = read_table(args.pretrained_dir / "spk2sid")
        utt2sid = {u: known.get(spk, "0") for u, spk in read_table(ref_dir / "utt2spk").items()}
        write_table(work / "tts_pretrained_utt2sid", utt2sid)
        before.append(f"{work / 'tts_pretrained_utt2sid'},sids,text_int")
    gen = tts(args.pretrained_dir / "tts/model.pth", args.pretrained_dir / "tts/config.yaml", ref_dir,
              work / "tts_pretrained", args.inference_config, before)
    rows.append(("TTS, pretrained model (before)", score(ref_dir, gen, work / "tts_pretrained/scores", args.score_options)))
    rows.append(("TTS, adapted model (after)", score(ref_dir, after / "wav/wav.scp", work / "tts_adapted/scores",
                                                     args.score_options)))
    if args.scratch_exp:
        gen = tts(args.scratch_exp / args.scratch_model, args.scratch_exp / "config.yaml", ref_dir,
                  work / "tts_scratch", args.inference_config, embeddings)
        rows.append((SCRATCH, score(ref_dir, gen, work / "tts_scratch/scores", args.score_options)))
    return rows


SCRATCH = "TTS, from scratch (same data and time)"


def wall_times(args) -> dict:
    """Stage 7's wall time: the adaptation's and, with a scratch baseline, what that used of the same budget."""
    def seconds(path):
        return int(path.read_text()) if path.is_file() else None

    times = dict(adaptation_seconds=seconds(args.tts_exp / "adaptation_seconds"))
    if args.scratch_exp:
        times["scratch_seconds"] = seconds(args.scratch_exp / "scratch_seconds")
    return times


def markdown(tables: dict, pretrained: dict, times: dict) -> str:
    lines = ["# Adaptation to a new voice: before and after", "",
             f"Pretrained model: `{Path(pretrained['pretrained_model']).name}` (WaveGAN: {pretrained['wavegan']}).",
             "WER/CER by the offline Whisper of stage 9; speaker similarity: cosine of resemblyzer embeddings "
             "to the mean of the new voice's other recordings (leave-one-out). The recordings' row is the floor."]
    if times.get("adaptation_seconds") is not None:
        lines.append(f"Stage 7 adapted in {times['adaptation_seconds']} s of wall time"
                     + (f"; from scratch, the recipe's own configs used {times['scratch_seconds']} s of the same "
                        "budget (WaveGAN, its latents, prior)." if times.get("scratch_seconds") is not None else "."))
    lines.append("")
    for dset, rows in tables.items():
        lines += [f"## {dset} ({rows[0][1].get('num_utts', '?')} utterances)", "",
                  "| | " + " | ".join(label for _, label, _ in COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
        for name, summary in rows:
            if name == "recordings":
                summary = dict(summary, wer=summary.get("wer_recordings", summary.get("wer")),
                               cer=summary.get("cer_recordings", summary.get("cer")),
                               spk_similarity=summary.get("spk_similarity_recordings"))
            cells = [fmt.format(summary[key]) if summary.get(key) is not None else "-" for key, _, fmt in COLUMNS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    score_options = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrained_dir", type=Path, required=True)
    parser.add_argument("--tts_exp", type=Path, required=True)
    parser.add_argument("--inference_tag", required=True)
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--data_dir", type=Path, default=Path("dump/raw"))
    parser.add_argument("--adapted_wavegan", type=Path, help="experiment dir of the --adapt_decoder WaveGAN")
    parser.add_argument("--adapted_wavegan_model", default="train.total_count.ave.pth")
    parser.add_argument("--inference_config", type=Path)
    parser.add_argument("--scratch_exp", type=Path, help="the --scratch_baseline prior's experiment dir (stage 7d)")
    parser.add_argument("--scratch_model", default="train.total_count.ave.pth")
    parser.add_argument("--use_sid", type=lambda v: v.lower() == "true", default=False,
                        help="a multi-speaker model with speaker ids (the pretrained one's spk2sid in --pretrained_dir)")
    parser.add_argument("--spembs_dir", type=Path, help="with speaker embeddings: dump/<spk_embed_tag>")
    args = parser.parse_args(argv)
    args.score_options = score_options
    try:
        tables = {dset: report_set(args, dset) for dset in args.test_sets}
    except DataError as e:
        die(str(e))
    pretrained = json.loads((args.pretrained_dir / "source.json").read_text())
    times = wall_times(args)
    (args.tts_exp / "RESULTS_adapt.md").write_text(markdown(tables, pretrained, times), encoding="utf-8")
    (args.tts_exp / "RESULTS_adapt.json").write_text(json.dumps(
        dict(pretrained=pretrained, **times, sets={d: dict(rows) for d, rows in tables.items()}), indent=2) + "\n")
    print(f"{args.tts_exp / 'RESULTS_adapt.md'}: before and after on {', '.join(args.test_sets)}")


if __name__ == "__main__":
    main()
