"""Time to intelligibility of the WaveGAN alone: variants of its config trained side by side, copy synthesis scored.

    .venv/bin/python benchmarks/wavegan_race.py --budget_minutes 40 --curve_minutes 10 \\
        --variant 'mel_vae:tts_conf.generator_params.encoder={type: mel_vae, conf: {channels: 128}}' \\
        --variant 'mel_vae_warm:tts_conf.generator_params.encoder={type: mel_vae, conf: {channels: 128}};tts_conf.adversarial_start_steps=300'

In the 100-minute quality race the two-stage system is bounded by its WaveGAN: its copy
synthesis of the held-out sentences was not understood at 20 and 40 minutes (CER 1.00) and
only partly at 60 (CER 0.59). The prior cannot be better than the latent it models, so the
WaveGAN's time to intelligibility is what to shorten first; this race measures it alone, with
none of the prior's time spent.

It reuses the quality race's work folder (its corpus, stages 1-6 and recordings' scores; run
``quality_race.py`` once first) and its race-size WaveGAN config (``RACE_SIZE["wavegan"]``),
to which each ``--variant NAME:KEY=VALUE[;KEY=VALUE...]`` applies its changes. Up to two
variants train at once, one core each, for ``--budget_minutes`` through the recipe's stage 7a;
every ``--curve_minutes`` the average of the last 3 epochs up to then copy-synthesises eval1
(posterior mean), and Whisper reads it beside the recordings (stage 9's scoring). The quality
race's own WaveGAN, when its record is in the work folder, is the baseline row.
Writes benchmarks/results/wavegan_race.{md,json}.
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_race as race  # noqa: E402

SYSTEM = "glow_wavegan"


def parse_variant(text):
    name, _, changes = text.partition(":")
    if not name or not changes:
        raise SystemExit(f"--variant {text}: expected NAME:KEY.PATH=VALUE[;KEY.PATH=VALUE...]")
    pairs = []
    for change in changes.split(";"):
        key, sep, value = change.partition("=")
        if not sep or not key:
            raise SystemExit(f"--variant {text}: '{change}' is not KEY.PATH=VALUE")
        pairs.append((key.strip(), yaml.safe_load(value)))
    return name, pairs


def train_variant(recipe, name, changes, budget_seconds, curve_minutes, core, log_dir):
    """Stage 7a for one variant until the budget, then its learning curve and final copy synthesis."""
    overrides = {(SYSTEM, "wavegan"): changes}
    configs = race.write_configs(recipe.dir, SYSTEM, overrides, f"wavegan_race_{name}")
    tag = f"wavegan_race_{name}"
    exp_dir = recipe.dir / "exp" / f"tts_{tag}"
    log = log_dir / f"wavegan_race_{name}.log"
    args = ["--train_config", str(configs["tts"]), "--vae_config", str(configs["wavegan"]), "--vae_tag", tag,
            "--tag", tag, "--train_tts", "false"]
    if exp_dir.exists():
        raise SystemExit(f"{exp_dir} exists: delete it to train variant {name} again")
    training = race.train_to_budget(recipe, name, args, budget_seconds, core, log, exp_dir)
    marks = race.curve_marks(curve_minutes, 0, training["seconds"])
    curve = race.curve_points(exp_dir, training, 0.0, marks,
                              lambda model: race.copy_synthesis(recipe, exp_dir, core, log, model, dnsmos=False)["scores"])
    final = race.copy_synthesis(recipe, exp_dir, core, log)
    curve.append(dict(minutes=training["seconds"] / 60, epochs=training.get("averaged_epochs"), scores=final["scores"]))
    return dict(name=name, changes=[[k, v] for k, v in changes], training=training, curve=curve,
                steps=steps_trained(exp_dir), wav_scp=final["wav_scp"])


def steps_trained(exp_dir):
    """Generator steps of the epochs written (every epoch is kept): epochs x num_iters_per_epoch."""
    epochs = [int(p.name[: -len("epoch.pth")]) for p in exp_dir.glob("*epoch.pth")]
    config = yaml.safe_load((exp_dir / "config.yaml").read_text())
    return max(epochs, default=0) * config["num_iters_per_epoch"]


def baseline(log_dir):
    """The quality race's own WaveGAN (the waveform encoder), if its record is here."""
    record_file = log_dir / f"{SYSTEM}.json"
    if not record_file.is_file():
        return None
    record = json.loads(record_file.read_text())
    curve = [p for p in record.get("curve", []) if p["kind"] == "copy synthesis"]
    curve.append(dict(minutes=record["wavegan"]["seconds"] / 60, scores=record["copy_synthesis"]["scores"]))
    return dict(name="quality race (waveform encoder)", changes=[], curve=curve)


def report(results, recordings, setup, out_dir):
    rows = []
    for r in results:
        for p in r["curve"]:
            s = p["scores"]
            cells = " | ".join(fmt.format(s[k]) if s.get(k) is not None else "-"
                               for k, fmt in (("wer", "{:.2f}"), ("cer", "{:.2f}"), ("mcd", "{:.2f}"),
                                              ("log_f0_rmse", "{:.3f}"), ("dnsmos_ovrl", "{:.2f}"), ("dnsmos_p808", "{:.2f}")))
            rows.append(f"| {r['name']} | {p['minutes']:.1f} | {cells} |")
    changes = [f"- **{r['name']}**: " + ("; ".join(f"`{k}={json.dumps(v)}`" for k, v in r["changes"]) or "the race's config")
               + (f" ({r['steps']} generator steps in the budget)" if r.get("steps") else "") for r in results]
    floor = recordings["scores"]
    text = "\n".join([
        f"# WaveGAN race: copy synthesis of {setup['held_out']} held-out sentences, {setup['budget_minutes']:g} minutes "
        "of one CPU core per variant", "",
        f"Corpus: the quality race's ({setup['work_dir']}). Recordings: WER {floor['wer']:.2f}, CER {floor['cer']:.2f}, "
        f"DNSMOS OVRL {floor['dnsmos_ovrl']:.2f} / P808 {floor['dnsmos_p808']:.2f}. Each point: the average of the last "
        "3 epochs written by then, posterior mean decoded (DNSMOS at the end only).", "",
        "Variants (changes to the race-size WaveGAN config):", "", *changes, "",
        "| variant | minutes | WER | CER | MCD | log-F0 RMSE | DNSMOS OVRL | P808 |",
        "|---|---|---|---|---|---|---|---|", *rows, ""])
    (out_dir / "wavegan_race.md").write_text(text)
    (out_dir / "wavegan_race.json").write_text(json.dumps(dict(setup=setup, recordings=recordings, variants=results),
                                                          indent=2) + "\n")
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--variant", dest="variants", action="append", required=True, metavar="NAME:KEY=VALUE[;...]")
    parser.add_argument("--budget_minutes", type=float, default=40.0)
    parser.add_argument("--curve_minutes", type=float, default=10.0)
    parser.add_argument("--cores", default="0,1")
    parser.add_argument("--work_dir", type=Path, default=race.WORK_DIR.with_name(race.WORK_DIR.name + "_piper"))
    parser.add_argument("--out_dir", type=Path, default=race.ROOT / "benchmarks/results")
    args = parser.parse_args(argv)
    args.work_dir = args.work_dir.resolve()  # the recipe runs in its own dir
    variants = [parse_variant(v) for v in args.variants]
    cores = [int(c) for c in args.cores.split(",")]
    if len(variants) > len(cores):
        raise SystemExit(f"{len(variants)} variants need as many --cores (one each)")
    recipe_dir = args.work_dir / "tts1"
    if not (recipe_dir / "dump/raw" / race.TEST_SET / "wav.scp").is_file():
        raise SystemExit(f"{recipe_dir}: no finished stages 1-6; run benchmarks/quality_race.py with this work folder first")
    recipe = race.Recipe(args.work_dir, Path((recipe_dir / "db.sh").read_text().split("=", 1)[1].strip()))
    log_dir = args.work_dir / "logs"
    recordings = race.score_recordings(recipe, log_dir / "data.log")
    jobs = {name: (lambda core, name=name, changes=changes: dict(
        scores=None, **train_variant(recipe, name, changes, args.budget_minutes * 60, args.curve_minutes, core, log_dir)))
        for name, changes in variants}
    records = race.side_by_side(jobs, cores)
    results = [r for r in [baseline(log_dir)] if r] + [records[name] for name, _ in variants]
    held_out = len((recipe.dir / "dump/raw" / race.TEST_SET / "wav.scp").read_text().splitlines())
    setup = dict(budget_minutes=args.budget_minutes, curve_minutes=args.curve_minutes, held_out=held_out,
                 work_dir=str(args.work_dir.name))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(report(results, recordings, setup, args.out_dir))


if __name__ == "__main__":
    main()
