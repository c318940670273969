"""A new voice from the quality race's trained glow_wavegan: adapted, against trained from scratch on the same data for the same CPU time.

    .venv/bin/python benchmarks/adaptation.py --minutes 2,5,10 --budget_minutes 10    # ~25 min a size

1. The new voice: ``race_corpus.py --voice piper_shifted`` (Piper's joe-medium with its pitch and
   formants raised through WORLD: another voice with human prosody, offline), on sentences of
   another seed than the race's. Per size, an LJSpeech-layout corpus of the first sentences that
   make that many minutes, plus the same held-out sentences (dev, eval1) for every size.
2. Per size, a recipe dir (the LJSpeech recipe, as the quality race lays it out) and two systems
   side by side, one core each, for ``--budget_minutes`` of training:
   - **adapted**: ``--pretrained_model <the race's glow_wavegan>``: stage 7b encodes the new voice
     with the pretrained WaveGAN, 7c fine-tunes the prior (conf/finetune/glow_wavegan.yaml, with
     the race's epoch length so that the budget stop loses at most a minute); 7b counts in the budget;
   - **scratch**: the race's glow_wavegan configs (its sizes, WaveGAN share and flow depth) trained
     from nothing on the same data (``quality_race.run_system``).
3. A learning curve (every ``--curve_minutes``, the last 3 epochs averaged), then the final model:
   WER/CER of the held-out sentences beside the recordings' floor, speaker similarity (resemblyzer)
   to the new voice's recordings and to the old voice's (the race corpus'), DNSMOS, and the wall
   time of each stage. The adapted run's stage 9 also writes its RESULTS_adapt.md (before/after).
4. Writes benchmarks/results/adaptation.{md,json}.

Target (issue 38): from 5 minutes of recordings, after 10 minutes of one core, the adapted model is
understood (WER at most twice the floor) and sounds like the new speaker (its similarity to the new
voice's recordings above its similarity to the old voice's).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import soundfile as sf
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_race as race  # noqa: E402
import race_corpus  # noqa: E402

ROOT = race.ROOT
FINETUNE = ROOT / "egs2/TEMPLATE/tts1/conf/finetune/glow_wavegan.yaml"
DECODER_FINETUNE = ROOT / "egs2/TEMPLATE/tts1/conf/finetune/wavegan_decoder.yaml"
RACE_WORK = race.WORK_DIR.with_name(race.WORK_DIR.name + "_piper")
# The race's best glow_wavegan (docs/quality_race.md, the CPU preset's settings): its WaveGAN share, the
# mel_vae encoder with 1000 reconstruction-only steps, and its flow depth. From scratch gets the settings
# that made the race's model speak soonest.
RACE_SETTINGS = dict(wavegan_share=0.6, overrides={
    ("glow_wavegan", "wavegan"): [("tts_conf.generator_params.encoder", {"type": "mel_vae", "conf": {"channels": 128}}),
                                  ("tts_conf.adversarial_start_steps", 1000)],
    ("glow_wavegan", "tts"): [("tts_conf.prior_params.flow_conf.blocks", 4)]})
# Fine-tuning within a CPU budget: the race's epoch length (a budget stop loses at most one epoch)
# and every epoch kept for the curve, on top of conf/finetune/glow_wavegan.yaml.
BUDGET_RUN = {"num_iters_per_epoch": 60, "max_epoch": 100000, "keep_nbest_models": 100000, "num_workers": 0,
              "num_att_plot": 0}
# The decoder's fine-tuning (--adapt_decoder): the race's WaveGAN epoch length (about half a minute).
DECODER_BUDGET_RUN = dict(BUDGET_RUN, num_iters_per_epoch=20)


def subset_corpus(full: Path, out: Path, minutes: float, held_out: int) -> int:
    """out/LJSpeech-1.1: the first sentences of ``full`` that make ``minutes`` of audio, then its last 2 x held_out."""
    rows = (full / "metadata.csv").read_text(encoding="utf-8").splitlines()
    train, tail = rows[: -2 * held_out], rows[-2 * held_out:]
    chosen, seconds = [], 0.0
    for row in train:
        if seconds >= minutes * 60:
            break
        chosen.append(row)
        seconds += sf.info(full / "wavs" / f"{row.split('|')[0]}.wav").duration
    if seconds < minutes * 60:
        raise SystemExit(f"{full}: {seconds / 60:.1f} min of training sentences, fewer than {minutes} min")
    corpus = out / "LJSpeech-1.1"
    (corpus / "wavs").mkdir(parents=True, exist_ok=True)
    for row in chosen + tail:
        link = corpus / "wavs" / f"{row.split('|')[0]}.wav"
        if not link.exists():
            link.symlink_to(full / "wavs" / link.name)
    (corpus / "metadata.csv").write_text("".join(f"{r}\n" for r in chosen + tail), encoding="utf-8")
    return len(chosen)


def similarity_to(wav_scp: Path, voices: dict) -> dict:
    """Mean cosine of each generated utterance's resemblyzer embedding to each voice's mean embedding."""
    import numpy as np

    from espnet2_glow_wavegan.intelligibility import SpeakerEncoder, cosine
    from espnet2_glow_wavegan.recipe.kaldi_dir import read_table

    encoder = SpeakerEncoder()

    def embed(path):
        wav, fs = sf.read(path, dtype="float64")
        return encoder.embed(wav, fs)

    centres = {name: np.mean([embed(p) for p in read_table(scp).values()], axis=0) for name, scp in voices.items()}
    generated = [embed(p) for p in read_table(wav_scp).values()]
    return {f"similarity_{name}": float(np.mean([cosine(g, c) for g in generated])) for name, c in centres.items()}


def adapted_system(recipe, pretrained: Path, core: int, budget: float, curve_minutes: float, log_dir: Path,
                   decoder_share: float = 0.0, prior_configs: tuple = (), decoder_configs: tuple = ()) -> dict:
    """Stages 7b-7c from the pretrained model for ``budget`` seconds, its curve, then stages 8-9 (RESULTS_adapt.md).

    ``decoder_share`` > 0: ``--adapt_decoder true``, the decoder's fine-tuning (7a) first, for that
    share of the budget; then 7b-7c on the adapted decoder for the rest. ``prior_configs`` /
    ``decoder_configs``: more fine-tuning configs, applied after the recipe's (an experiment).
    """
    budget_file = recipe.dir / "conf/finetune_budget.yaml"
    budget_file.write_text(yaml.safe_dump(BUDGET_RUN))
    tag = "adapted_decoder" if decoder_share else "adapted"
    # tts.sh lays a pretrained model out in exp/pretrained/<its name>: one name per system, so that
    # two adaptations of one model side by side do not share (and race for) that folder.
    link = recipe.dir / f"{pretrained.stem}_for_{tag}{pretrained.suffix}"
    race._link(pretrained, link)
    common = ["--pretrained_model", str(link), "--tag", tag, "--vae_config", str(race.CONF / "train_wavegan_vae_istft.yaml"),
              "--train_config", str(race.CONF / "train_glow_wavegan.yaml"),
              "--finetune_prior_configs", " ".join(map(str, (FINETUNE, budget_file, *prior_configs)))]
    log = log_dir / f"{tag}.log"
    exp = recipe.dir / "exp" / f"tts_{tag}"
    record = dict(system=tag)
    offset = 0.0
    if decoder_share:
        decoder_budget_file = recipe.dir / "conf/finetune_decoder_budget.yaml"
        decoder_budget_file.write_text(yaml.safe_dump(DECODER_BUDGET_RUN))
        common += ["--adapt_decoder", "true", "--finetune_decoder_configs",
                   " ".join(map(str, (DECODER_FINETUNE, decoder_budget_file, *decoder_configs)))]
        decoder_exp = recipe.dir / "exp" / f"tts_{tag}_decoder"  # tts.sh's vae_tag: <tag>_decoder
        record["decoder"] = race.train_to_budget(recipe, tag, [*common, "--train_tts", "false"], budget * decoder_share,
                                                 core, log, decoder_exp)
        offset = record["decoder"]["seconds"]
        common += ["--train_vae", "false"]
    start = log.stat().st_size if log.exists() else 0
    training = race.train_to_budget(recipe, tag, common, budget - offset, core, log, exp)
    training["extraction_seconds"] = race.extraction_seconds(log, start)
    training["seconds"] += offset  # the system's clock: the decoder's fine-tuning counts

    def decode(model, stop=8):
        tag_dir = f"decode_{Path(model).stem}"
        status, seconds = recipe.run(["--stage", "8", "--stop_stage", str(stop), "--inference_model", model, *common,
                                      "--score_opts", "--dnsmos true" if stop == 9 else ""], core=core, log=log)
        if status:
            raise RuntimeError(f"{tag}: decoding {model} failed; see {log}")
        return exp / tag_dir / race.TEST_SET, seconds

    def evaluate(model):
        out, _ = decode(model)
        return score(recipe, out / "wav/wav.scp", out / "scores", core, log, dnsmos=False)

    marks = race.curve_marks(curve_minutes, offset, training["seconds"])
    curve = race.curve_points(exp, training, offset, marks, evaluate)
    out, decode_seconds = decode("train.total_count.ave.pth", stop=9)
    scores = json.loads((out / "scores/summary.json").read_text())
    return dict(record, training=training, curve=curve, scores=scores, decode_seconds=decode_seconds,
                wav_scp=recipe.relative(out / "wav/wav.scp"), report=recipe.relative(exp / "RESULTS_adapt.md"))


def score(recipe, wav_scp: Path, out: Path, core: int, log: Path, dnsmos: bool) -> dict:
    import subprocess

    ref = recipe.dir / "dump/raw" / race.TEST_SET
    with open(log, "a") as f:
        subprocess.run(["taskset", "-c", str(core), sys.executable, "-m", "espnet2_glow_wavegan.recipe.score",
                        "--ref_scp", str(ref / "wav.scp"), "--gen_scp", str(wav_scp), "--out_dir", str(out),
                        "--dnsmos", str(dnsmos).lower(), "--speaker_similarity", "true", "--utt2spk", str(ref / "utt2spk"),
                        *race.asr_options(recipe)], stdout=f, stderr=subprocess.STDOUT, check=True, env=race.race_env())
    return json.loads((out / "summary.json").read_text())


def scratch_system(recipe, core: int, budget: float, curve_minutes: float, log_dir: Path) -> dict:
    opts = argparse.Namespace(overrides=RACE_SETTINGS["overrides"], wavegan_share=RACE_SETTINGS["wavegan_share"],
                              tiny=False, curve_minutes=curve_minutes, inference_args="")
    record = race.run_system(recipe, "glow_wavegan", core, budget, opts, "scratch", log_dir)
    return dict(record, system="scratch")


def run_size(args, minutes: float, full_corpus: Path) -> dict:
    work = args.work_dir / f"minutes_{minutes:g}"
    sentences = subset_corpus(full_corpus, work / "corpus", minutes, args.held_out)
    recipe = race.Recipe(work, (work / "corpus").resolve(), args.held_out)
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    configs = race.write_configs(recipe.dir, "glow_wavegan", RACE_SETTINGS["overrides"], "scratch")
    data = ["--train_config", str(configs["tts"]), "--vae_config", str(configs["wavegan"])]
    started = time.perf_counter()
    status, _ = recipe.run(["--stage", "1", "--stop_stage", "1", *data, "--valid_set", "dev"], log=log_dir / "data.log")
    if not status:
        recipe.make_valid_subset()
        status, _ = recipe.run(["--stage", "2", "--stop_stage", "6", *data], log=log_dir / "data.log")
    if status:
        raise SystemExit(f"stages 1-6 failed; see {log_dir}/data.log")
    data_seconds = time.perf_counter() - started
    recordings = race.score_recordings(recipe, log_dir / "data.log")
    budget = args.budget_minutes * 60
    cores = [int(c) for c in args.cores.split(",")]
    extra = dict(prior_configs=args.prior_config, decoder_configs=args.decoder_config)
    jobs = {"adapted": lambda core: adapted_system(recipe, args.pretrained, core, budget, args.curve_minutes, log_dir,
                                                   **extra),
            "adapted_decoder": lambda core: adapted_system(recipe, args.pretrained, core, budget, args.curve_minutes,
                                                           log_dir, decoder_share=args.decoder_share, **extra),
            "scratch": lambda core: scratch_system(recipe, core, budget, args.curve_minutes, log_dir)}
    systems = race.side_by_side({name: jobs[name] for name in args.systems.split(",")}, cores)
    voices = {"new": recipe.dir / "dump/raw" / race.TEST_SET / "wav.scp", "old": args.old_voice}
    for record in systems.values():
        record["scores"].update(similarity_to(recipe.dir / record["wav_scp"], voices))
    recordings["scores"].update(similarity_to(voices["new"], voices))
    return dict(minutes=minutes, sentences=sentences, data_seconds=data_seconds, recordings=recordings, systems=systems)


def report(results, setup, out_dir, report_name="adaptation"):
    cells = (("wer", "{:.2f}"), ("cer", "{:.2f}"), ("similarity_new", "{:.3f}"), ("similarity_old", "{:.3f}"),
             ("mcd", "{:.2f}"), ("dnsmos_ovrl", "{:.2f}"), ("dnsmos_p808", "{:.2f}"))

    def row(name, scores, extra=""):
        values = " | ".join(fmt.format(scores[k]) if scores.get(k) is not None else "-" for k, fmt in cells)
        return f"| {name} | {extra} | {values} |"

    systems = setup.get("systems", "adapted,scratch").replace(",", ", ")
    lines = [f"# A new voice from the race's glow_wavegan ({systems}), "
             f"{setup['budget_minutes']:g} minutes of one CPU core each", "",
             f"New voice: {setup['voice']}. Pretrained: {setup['pretrained']}. Held out: {setup['held_out']} "
             "sentences (eval1). Similarity: mean cosine of resemblyzer embeddings to the mean embedding of the "
             "new voice's held-out recordings (new) and of the race corpus' held-out recordings (old).", ""]
    for key, label in (("prior_config_settings", "prior"), ("decoder_config_settings", "decoder")):
        if setup.get(key):
            lines += [f"Experiment: the {label}'s fine-tuning also sets " + "; ".join(
                ", ".join(f"`{k}: {v}`" for k, v in settings.items()) for settings in setup[key]) + ".", ""]
    for r in results:
        floor = r["recordings"]["scores"]
        lines += [f"## {r['minutes']:g} minutes of recordings ({r['sentences']} sentences)", "",
                  "| | training [s] | WER | CER | sim. new | sim. old | MCD | DNSMOS OVRL | P808 |",
                  "|---|---|---|---|---|---|---|---|---|",
                  row("recordings", dict(floor, wer=floor.get("wer"), cer=floor.get("cer")))]
        for name, s in r["systems"].items():
            adapted = name.startswith("adapted")
            seconds = s["training"]["seconds"] if adapted else s["train_seconds"]
            split = (f"{seconds:.0f} (7b: {s['training'].get('extraction_seconds') or 0:.0f})" if adapted
                     else f"{seconds:.0f} (WaveGAN {s['wavegan']['seconds']:.0f})")
            if "decoder" in s:
                split += f" (7a decoder: {s['decoder']['seconds']:.0f})"
            lines.append(row(name, s["scores"], split))
        lines += ["", "Learning curves (WER / CER / similarity to the new voice's recordings):", "",
                  "| system | minutes | output | WER | CER | speaker sim. |", "|---|---|---|---|---|---|"]
        for name, s in r["systems"].items():
            for p in s["curve"]:
                sc = p["scores"]
                lines.append(f"| {name} | {p['minutes']:.1f} | {p.get('kind', 'tts')} | {sc.get('wer', float('nan')):.2f} "
                             f"| {sc.get('cer', float('nan')):.2f} | {sc.get('spk_similarity', float('nan')):.3f} |")
        lines.append("")
    text = "\n".join(lines)
    (out_dir / f"{report_name}.md").write_text(text)
    (out_dir / f"{report_name}.json").write_text(json.dumps(dict(setup=setup, results=results), indent=2, default=str) + "\n")
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--minutes", default="2,5,10", help="sizes of the new voice's training data")
    parser.add_argument("--budget_minutes", type=float, default=10.0)
    parser.add_argument("--curve_minutes", type=float, default=2.5)
    parser.add_argument("--held_out", type=int, default=20)
    parser.add_argument("--pretrained", type=Path, default=RACE_WORK / "tts1/exp/tts_glow_wavegan",
                        help="the trained glow_wavegan (an experiment dir or a packed zip)")
    parser.add_argument("--old_voice", type=Path, default=RACE_WORK / "tts1/dump/raw" / race.TEST_SET / "wav.scp",
                        help="recordings of the pretrained model's voice (the race's held-out ones)")
    parser.add_argument("--voice", default="piper_shifted")
    parser.add_argument("--seed", type=int, default=7, help="sentence generator seed (the race's is 2026)")
    parser.add_argument("--systems", default="adapted,scratch",
                        help="of adapted (prior only), adapted_decoder (--adapt_decoder true) and scratch; one per core")
    parser.add_argument("--decoder_share", type=float, default=0.5,
                        help="adapted_decoder: the share of the budget spent fine-tuning the decoder (stage 7a)")
    parser.add_argument("--prior_config", type=Path, nargs="*", default=(),
                        help="fine-tuning configs applied after conf/finetune/glow_wavegan.yaml (an experiment)")
    parser.add_argument("--decoder_config", type=Path, nargs="*", default=(),
                        help="... after conf/finetune/wavegan_decoder.yaml (--adapt_decoder)")
    parser.add_argument("--corpus_minutes", type=float,
                        help="build the new voice's corpus for this size (default: the largest of --minutes), so that "
                             "runs of different sizes side by side share their held-out sentences")
    parser.add_argument("--cores", default="0,1")
    parser.add_argument("--work_dir", type=Path, default=race.WORK_DIR.with_name("adaptation"))
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--report_name", default="adaptation", help="<out_dir>/<report_name>.{md,json}")
    args = parser.parse_args(argv)
    args.pretrained = args.pretrained.resolve()
    args.work_dir = args.work_dir.resolve()
    args.old_voice = args.old_voice.resolve()
    if not args.pretrained.exists():
        raise SystemExit(f"--pretrained {args.pretrained}: missing (run benchmarks/quality_race.py first)")
    sizes = [float(m) for m in args.minutes.split(",")]
    # Sentences of about 3.5 s: enough for the largest size, plus the held-out ones (the corpus' last).
    count = int(max(sizes + [args.corpus_minutes or 0]) * 60 / 3.0) + 2 * args.held_out + 10
    full = race_corpus.build(args.work_dir / "corpus", count, seed=args.seed, voice=args.voice)
    results = [run_size(args, minutes, full) for minutes in sizes]
    setup = dict(budget_minutes=args.budget_minutes, curve_minutes=args.curve_minutes, held_out=args.held_out,
                 systems=args.systems, decoder_share=args.decoder_share, corpus_sentences=count,
                 voice=f"{args.voice} (benchmarks/race_corpus.py, seed {args.seed})",
                 pretrained=args.pretrained.name,  # the experiment's name: its folder is this machine's
                 **{f"{k}_settings": [yaml.safe_load(p.read_text()) for p in getattr(args, k)]
                    for k in ("prior_config", "decoder_config") if getattr(args, k)})
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(report(results, setup, args.out_dir, args.report_name))


if __name__ == "__main__":
    main()
