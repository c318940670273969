"""Does the joint phase close the gap between copy synthesis and TTS? A race's prior, trained on two ways.

    .venv/bin/python benchmarks/quality_race.py --rounds glow_wavegan --variant base   # first: a race
    .venv/bin/python benchmarks/joint_phase.py --source glow_wavegan_base --minutes 10

After a quality race in the same work folder, the prior of one of its glow_wavegan experiments
(``exp/tts_<source>/train.total_count.ave.pth``) is trained for ``--minutes`` more through the
recipe's stage 7c, each way on its own core, side by side:

- ``prior``: the paper's second stage, continued (the WaveGAN stays frozen);
- ``joint``: ``training_phase: joint``. The decoder is also fine-tuned, with the GAN losses and the
  WaveGAN's discriminator, on latents sampled from the text-conditioned prior against the real audio.
  It reads the waveform (``speech_input: waveform``), so a step costs about a WaveGAN step.

Both start from the same weights with fresh optimisers and the race config's schedule (the joint
model has parameters that the prior's optimiser never had, so neither resumes). The race's budget
rules hold: the stop is a timeout, and the last 3 whole epochs are averaged. Both then decode and
score eval1 as the race does (stages 8-9). The joint arm's decoder also copy-synthesises eval1, to
show what the fine-tuning did to reconstruction. Writes ``benchmarks/results/joint_phase.{md,json}``.
"""

import argparse
import functools
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_race as race  # noqa: E402

# The joint arm reads the waveform: the WaveGAN's batches (the same utterances per batch as the
# prior's stored-posterior batches) and epochs of about a minute at ~4 s a step.
JOINT = {"tts_conf.training_phase": "joint", "tts_conf.speech_input": "waveform",
         "batch_bins": race.RACE_SIZE["wavegan"]["batch_bins"], "num_iters_per_epoch": 15}


def arm_configs(recipe, source):
    """conf/race/train_<source>_{prior,joint}.yaml from the source's own race config."""
    base = yaml.safe_load((recipe.dir / f"conf/race/train_{source}.yaml").read_text())
    paths = {}
    for arm, changes in (("prior", {}), ("joint", JOINT)):
        config = json.loads(json.dumps(base))
        for key, value in changes.items():
            race.set_key(config, key, value)
        paths[arm] = recipe.dir / f"conf/race/train_{source}_{arm}.yaml"
        paths[arm].write_text(yaml.safe_dump(config, sort_keys=False))
    return paths


def joint_copy_synthesis(recipe, exp_dir, vae_exp, core, log):
    """The joint arm's fine-tuned decoder (with the frozen encoder) copy-synthesising eval1, as the race scores it:
    the WaveGAN's own model file with its generator weights taken from the joint model."""
    import torch

    joint = torch.load(exp_dir / "train.total_count.ave.pth", map_location="cpu", weights_only=True)
    state = torch.load(vae_exp / "train.total_count.ave.pth", map_location="cpu", weights_only=True)
    for key in state:
        if key.startswith("tts.generator."):
            state[key] = joint["tts.generator.wavegan." + key[len("tts.generator."):]]
    out = exp_dir / "decoder"
    out.mkdir(exist_ok=True)
    torch.save(state, out / "train.total_count.ave.pth")
    (out / "config.yaml").write_text((vae_exp / "config.yaml").read_text())
    return race.copy_synthesis(recipe, out, core, log)


def run_arm(recipe, source, arm, config, vae_tag, vae_config, seconds, core, log_dir):
    name = f"{source}_{arm}"
    log = log_dir / f"{name}.log"
    exp = recipe.dir / "exp"
    source_model = exp / f"tts_{source}" / "train.total_count.ave.pth"
    common = ["--train_config", str(config), "--tag", name, "--vae_config", str(vae_config), "--vae_tag", vae_tag]
    # ESPnet's --init_param takes a list and the last one given wins: stage 7c's own (the WaveGAN,
    # and for the joint phase its discriminator) are repeated with the source's prior.
    wavegan_model = (exp / f"tts_{vae_tag}" / "train.total_count.ave.pth").resolve()
    init = ["--init_param", f"{wavegan_model}:tts.generator:tts.generator.wavegan",
            *([f"{wavegan_model}:tts.discriminator:tts.discriminator"] if arm == "joint" else []),
            f"{source_model.resolve()}:tts.generator.prior:tts.generator.prior"]
    record = dict(arm=arm, core=core, budget_seconds=seconds)
    record["tts"] = race.train_to_budget(recipe, name, [*common, "--train_vae", "false", "--train_args", " ".join(init)],
                                         seconds, core, log, exp / f"tts_{name}")
    status, record["decode_seconds"] = recipe.run(["--stage", "8", "--stop_stage", "9", "--score_opts", "--dnsmos true",
                                                   *common], core=core, log=log)
    if status:
        raise RuntimeError(f"{name}: decoding or scoring failed; see {log}")
    scores = exp / f"tts_{name}" / "decode_train.total_count.ave" / race.TEST_SET / "scores"
    record["scores"] = json.loads((scores / "summary.json").read_text())
    record["wav_scp"] = recipe.relative(scores.parent / "wav/wav.scp")
    if arm == "joint":
        record["copy_synthesis"] = joint_copy_synthesis(recipe, exp / f"tts_{name}", exp / f"tts_{vae_tag}", core, log)
    return record


def report(source_record, arms, minutes, out_dir):
    header = "| model | " + " | ".join(label for _, label, _ in race.METRICS) + " |"
    rule = "|---|" + "---|" * len(race.METRICS)
    source = source_record["tts"]["seconds"]
    rows = [f"| the race's prior ({source:.0f} s of stage 7b and prior) | {race._cells(source_record['scores'])} |"]
    for arm, record in arms.items():
        rows.append(f"| + {minutes:g} min {arm} phase (trained {record['tts']['seconds']:.0f} s, epochs "
                    f"{record['tts'].get('averaged_epochs')} averaged) | {race._cells(record['scores'])} |")
    copies = [f"| the race's WaveGAN | {race._cells(source_record['copy_synthesis']['scores'])} |"]
    if "copy_synthesis" in arms.get("joint", {}):
        copies.append(f"| its decoder after the joint phase | {race._cells(arms['joint']['copy_synthesis']['scores'])} |")
    text = "\n".join([
        f"# The joint phase against the prior phase: {minutes:g} more minutes of one CPU core each",
        "",
        f"Both continue the prior of the race experiment `{source_record['label']}` ({source_record['system']}) "
        "from the same weights; eval1 scored as in the race (benchmarks/joint_phase.py).",
        "",
        "## Text to speech", "", header, rule, *rows, "",
        "## Copy synthesis of eval1", "", header, rule, *copies, "",
    ])
    (out_dir / "joint_phase.md").write_text(text)
    (out_dir / "joint_phase.json").write_text(json.dumps(dict(minutes=minutes, source=source_record, arms=arms),
                                                         indent=2) + "\n")
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--source", default="glow_wavegan",
                        help="a finished glow_wavegan experiment of the race (its logs/<source>.json)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time of each arm")
    parser.add_argument("--cores", default="0,1", help="the cores of the prior and the joint arm")
    parser.add_argument("--held_out", type=int, default=20, help="as the race was run with")
    parser.add_argument("--corpus", type=Path, help="as the race was run with (default: the work folder's corpus)")
    parser.add_argument("--work_dir", type=Path, default=race.WORK_DIR)
    parser.add_argument("--out_dir", type=Path, default=race.ROOT / "benchmarks/results")
    args = parser.parse_args(argv)

    log_dir = args.work_dir / "logs"
    record_file = log_dir / f"{args.source}.json"
    if not record_file.is_file():
        raise SystemExit(f"{record_file} not found: run the race first (benchmarks/quality_race.py), "
                         "and give --source the name of one of its glow_wavegan experiments")
    source = json.loads(record_file.read_text())
    if "wavegan" not in source or source["system"] == "glow_mel":
        raise SystemExit(f"--source {args.source}: not a glow_wavegan experiment (it has no WaveGAN latent prior)")
    corpus = args.corpus or args.work_dir / "corpus"
    recipe = race.Recipe(args.work_dir, corpus.resolve(), args.held_out)
    source_model = recipe.dir / f"exp/tts_{args.source}/train.total_count.ave.pth"
    if not source_model.exists():
        raise SystemExit(f"{source_model} not found: the race experiment {args.source} did not finish")
    vae_config = source["wavegan"]["config"]
    vae_tag = race.wavegan_tag(source["system"], vae_config, source["wavegan"]["budget_seconds"])
    vae_config_file = recipe.dir / f"conf/race/train_{args.source}_wavegan.yaml"
    vae_config_file.write_text(yaml.safe_dump(vae_config, sort_keys=False))
    configs = arm_configs(recipe, args.source)

    print(f"{args.source}: prior and joint phase, {args.minutes:g} min each (logs: {log_dir})", flush=True)
    arms = race.side_by_side({arm: functools.partial(run_arm, recipe, args.source, arm, configs[arm], vae_tag,
                                                     vae_config_file, args.minutes * 60, log_dir=log_dir)
                              for arm in ("prior", "joint")}, [int(c) for c in args.cores.split(",")])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(report(source, {arm: arms[arm] for arm in ("prior", "joint")}, args.minutes, args.out_dir))


if __name__ == "__main__":
    main()
