"""Quality per unit of training: glow_wavegan, ESPnet's VITS and Glow-TTS + inner-GAN, trained for the same time.

    .venv/bin/python benchmarks/quality_race.py    # 50 min per system, two rounds: 1 h 48 min measured
    .venv/bin/python benchmarks/quality_race.py --budget_minutes 20 --rounds glow_wavegan,vits  # quick: ~25 min

(Below 20 minutes the default WaveGAN share leaves the prior no epoch.)

1. Builds its own corpus (benchmarks/race_corpus.py: 260 generated sentences spoken by
   Piper's joe-medium voice, or with ``--voice en-us`` by espeak-ng as in the earlier races;
   LJSpeech layout; the recipe holds the last 20 out as dev and 20 as eval1).
2. Lays out a recipe dir in the work folder that runs the LJSpeech recipe itself
   (egs2/ljspeech/tts1/run.sh, local/, the shared tts.sh) on that corpus, and runs
   stages 1-6 there once for every system.
3. Trains each system through the recipe's stage 7 and ESPnet's stock ``gan_tts_train``,
   for the same wall-clock budget, each pinned to its own core (``taskset``, one math
   thread, ``NUMBA_NUM_THREADS=1``), two systems at a time (a round). A two-stage system
   spends ``--wavegan_share`` of its budget on the WaveGAN (7a), then extracts its latents
   (7b) and trains the prior (7c) for what is left. The budget stops training through
   ``timeout`` on the whole job; epochs are about a minute long, so at most the last minute
   of training is lost. As ESPnet does at the end of a training, the last 3 epochs are
   averaged into ``train.total_count.ave.pth``, the model the recipe decodes (and 7b encodes with).
4. Decodes eval1 (stage 8) and scores it (stage 9: WER and CER of an offline Whisper beside
   its error rates on the recordings, MCD, log-F0 RMSE, V/UV error, duration ratio, plus
   DNSMOS), and copy-synthesises eval1 with each trained WaveGAN (the paper's reconstruction
   table).
5. Learning curves (``--curve_minutes``): every epoch is kept, and at every mark of that many
   minutes of a system's budget, the average of its last 3 epochs up to then is decoded and
   scored the same way (WER first): a TTS model's synthesis, and during a two-stage system's
   WaveGAN phase its WaveGAN's copy synthesis. They say when each system starts to be
   understood, and which stage bounds it.
6. Writes benchmarks/results/quality_race.{md,json} and quality_race.png (log-mel
   spectrograms of one held-out sentence, recording and every system).

Configs are the recipe's paper-size LJSpeech configs with the sizes cut for one CPU core
(``RACE_SIZE`` below, the same cuts for every system where they share a part) and the
race's own epoch length; nothing else is changed, so what the race shows about a setting
is what the recipe's config would do. ``--set SYSTEM.ROLE:KEY.PATH=VALUE`` changes a
derived config for an experiment (e.g. ``--set glow_wavegan.tts:tts_conf.noise_scale=0.5``);
``--variant NAME`` keeps such a run's experiments apart. A rerun with the same work folder
reuses what is finished: the corpus, stages 1-6, and every WaveGAN whose config and budget
are unchanged (its recorded training time still counts against its system's budget), so
prior experiments cost only the prior's time.
"""

import argparse
import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs2/ljspeech/tts1"
TEMPLATE = ROOT / "egs2/TEMPLATE/tts1"
CONF = RECIPE / "conf/tuning"
WORK_DIR = ROOT / "benchmarks" / "work" / "quality_race"  # gitignored; a voice other than en-us: quality_race_<voice>
sys.path.insert(0, str(Path(__file__).resolve().parent))
import race_corpus  # noqa: E402

from espnet2_glow_wavegan.recipe.timed_training import average_last_epochs  # noqa: E402

# Each system: the recipe config of each training ("wavegan": stage 7a, "tts": the TTS model),
# and the share of the race budget it gets (1 = the full budget).
SYSTEMS = {
    "glow_wavegan": dict(wavegan="train_wavegan_vae_istft.yaml", tts="train_glow_wavegan.yaml", budget=1.0,
                         label="Glow-WaveGAN (z), iSTFT decoder"),
    "vits": dict(tts="train_vits.yaml", budget=1.0, label="ESPnet VITS"),
    "glow_mel": dict(wavegan="train_inner_gan.yaml", tts="train_glow_mel.yaml", budget=1.0,
                     label="Glow-TTS + inner-GAN (mel), iSTFT decoder"),
    "glow_wavegan_half": dict(wavegan="train_wavegan_vae_istft.yaml", tts="train_glow_wavegan.yaml", budget=0.5,
                              label="Glow-WaveGAN (z), iSTFT decoder, half the budget"),
}
ROUNDS = [["glow_wavegan", "vits"], ["glow_mel", "glow_wavegan_half"]]

# One CPU core instead of GPUs: every width and depth cut to about a quarter, the same cut
# for the parts the systems share (decoder width, discriminator, text encoder), so VITS and
# glow_wavegan stay comparable in size (see the parameter counts in the report).
_DISCRIMINATOR = {
    "scale_discriminator_params.channels": 32, "scale_discriminator_params.max_downsample_channels": 256,
    "scale_discriminator_params.max_groups": 8,
    "period_discriminator_params.channels": 8, "period_discriminator_params.max_downsample_channels": 256,
}
_ISTFT_DECODER = {"type": "istft", "conf": {"channels": 256, "intermediate_channels": 768, "layers": 4}}
_WAVEGAN = {"latent_dim": 64, "encoder.conf.channels": 16, "encoder.conf.max_channels": 128, "decoder": _ISTFT_DECODER}
# The inner-GAN: the same decoder over the mel (80 bands: its latent_dim is the mel's).
_MEL_WAVEGAN = {"decoder": _ISTFT_DECODER}
_TEXT_ENCODER = {"text_encoder_conf.attention_dim": 128, "text_encoder_conf.linear_units": 512,
                 "text_encoder_conf.blocks": 4}
_PRIOR = {**_TEXT_ENCODER, "duration_predictor_conf.n_chans": 128, "flow_conf.blocks": 8,
          "flow_conf.hidden_channels": 128}
# Training: small batches (one core), epochs of about a minute (what a budget stop can lose), the
# last 3 epochs kept (see average_last_epochs), no data-loader workers and no attention plots
# (they would run on the same core).
# Every epoch is kept (the best criterion is the step count): the learning curves average the last
# 3 epochs up to each of their marks, as the final model does at the end of the budget.
_TRAINING = {"batch_bins": 400000, "num_workers": 0, "num_att_plot": 0, "log_interval": 20, "max_epoch": 100000,
             "keep_nbest_models": 100000}
RACE_SIZE = {
    "wavegan": {
        **_TRAINING, "num_iters_per_epoch": 20,
        **{f"tts_conf.generator_params.{k}": v for k, v in _WAVEGAN.items()},
        **{f"tts_conf.discriminator_params.{k}": v for k, v in _DISCRIMINATOR.items()},
    },
    "inner_gan": {
        **_TRAINING, "num_iters_per_epoch": 25,
        **{f"tts_conf.generator_params.{k}": v for k, v in _MEL_WAVEGAN.items()},
        **{f"tts_conf.discriminator_params.{k}": v for k, v in _DISCRIMINATOR.items()},
    },
    # The prior's warm-up, cut to the race's step count as its sizes are: Glow-TTS' 4000 steps are
    # 1.3% of its 300k; the race trains the prior for about a thousand (a 500-step warm-up measured
    # better than 4000 on the same WaveGAN: docs/quality_race.md).
    "prior": {
        **_TRAINING, "num_iters_per_epoch": 60, "scheduler_conf.warmup_steps": 500,
        # The stored posterior has 2 x latent_dim numbers per frame of 256 samples.
        "batch_bins": 400000 * 2 * 64 // 256,
        **{f"tts_conf.prior_params.{k}": v for k, v in _PRIOR.items()},
    },
    "mel_prior": {
        **_TRAINING, "num_iters_per_epoch": 60, "scheduler_conf.warmup_steps": 500,
        "batch_bins": 400000 * 2 * 80 // 256,
        **{f"tts_conf.prior_params.{k}": v for k, v in _PRIOR.items()},
    },
    "vits": {
        **_TRAINING, "num_iters_per_epoch": 8,
        "tts_conf.generator_params.hidden_channels": 128,
        "tts_conf.generator_params.text_encoder_blocks": 4,
        "tts_conf.generator_params.decoder_channels": 256,
        "tts_conf.generator_params.posterior_encoder_layers": 8,
        **{f"tts_conf.discriminator_params.{k}": v for k, v in _DISCRIMINATOR.items()},
    },
}
# --tiny: no data-loader workers, no attention plots, every epoch kept, as in the race.
TINY_RUN = {"num_workers": 0, "num_att_plot": 0, "keep_nbest_models": 100000}
# The recipe's LJSpeech options; the race's corpus is read with characters (g2p_en needs NLTK
# data from the internet) and holds out 20 + 20 sentences.
# Validation runs every epoch on VALID_SET, 4 of the 20 dev sentences: a few seconds, so that
# epochs can be short without validation eating the budget.
RECIPE_OPTIONS = ["--mini", "false", "--token_type", "char", "--g2p", "none", "--ngpu", "0", "--nj", "1",
                  "--inference_nj", "1", "--test_sets", "eval1", "--valid_set", "dev_small"]
TEST_SET = "eval1"
VALID_SET, VALID_UTTERANCES = "dev_small", 4


def set_key(config, dotted, value):
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def size_of(system, role):
    if role == "wavegan":
        return "inner_gan" if system == "glow_mel" else "wavegan"
    if system == "vits":
        return "vits"
    return "mel_prior" if system == "glow_mel" else "prior"


def derive(system, role, overrides, tiny=False):
    """A race config: the recipe's, with RACE_SIZE's cuts and the user's ``--set`` overrides.

    ``tiny``: the recipe's tiny configs as they are (a smoke run of the race, not a race).
    """
    name = SYSTEMS[system][role]
    config = yaml.safe_load((CONF / (name.replace(".yaml", "_tiny.yaml") if tiny else name)).read_text())
    for key, value in (TINY_RUN if tiny else RACE_SIZE[size_of(system, role)]).items():
        set_key(config, key, value)
    for key, value in overrides.get((system, role), []):
        set_key(config, key, value)
    return config


def write_configs(recipe_dir, system, overrides, variant, tiny=False):
    """conf/race/train_<system>[_<variant>]{_wavegan,}.yaml (the prior gets its WaveGAN's settings at stage 7c)."""
    paths = {}
    out = recipe_dir / "conf/race"
    out.mkdir(parents=True, exist_ok=True)
    name = f"{system}_{variant}" if variant else system
    configs = {role: derive(system, role, overrides, tiny) for role in ("wavegan", "tts") if role in SYSTEMS[system]}
    for role, config in configs.items():
        tag = f"{name}_wavegan" if role == "wavegan" else name  # variants run side by side: one file each
        path = out / f"train_{tag}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        paths[role] = path
    return paths


class Recipe:
    """A recipe dir in the work folder that runs the LJSpeech recipe on the race corpus."""

    def __init__(self, work_dir: Path, corpus_root: Path, held_out: int = 20):
        self.dir = work_dir / "tts1"
        self.options = [*RECIPE_OPTIONS, "--local_data_opts", f"--num_heldout {held_out}"]
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in ("run.sh", "local", "cmd.sh"):
            _link(RECIPE / name, self.dir / name)
        for name in ("tts.sh", "utils"):
            _link(TEMPLATE / name, self.dir / name)
        (self.dir / "conf").mkdir(exist_ok=True)
        _link(RECIPE / "conf/decode.yaml", self.dir / "conf/decode.yaml")
        (self.dir / "path.sh").write_text(f". {TEMPLATE / 'path.sh'}\n")
        (self.dir / "db.sh").write_text(f"LJSPEECH={corpus_root}\n")

    def relative(self, path: Path) -> str:
        """``path`` as the report records it: relative to the recipe dir, so no machine's paths are committed."""
        return os.path.relpath(path, self.dir)

    def make_valid_subset(self):
        """data/dev_small: the first VALID_UTTERANCES of data/dev (a Kaldi dir, after stage 1)."""
        from espnet2_glow_wavegan.recipe.kaldi_dir import read_table, write_data_dir

        dev, small = self.dir / "data/dev", self.dir / "data" / VALID_SET
        if (small / "wav.scp").is_file():
            return
        keep = sorted(read_table(dev / "wav.scp"))[:VALID_UTTERANCES]
        tables = {name: read_table(dev / name) for name in ("wav.scp", "text", "utt2spk")}
        write_data_dir(small, **{name.replace(".", "_"): {u: t[u] for u in keep} for name, t in tables.items()})

    def run(self, args, core=None, timeout=None, log=None):
        """``./run.sh ARGS`` on one core with one math thread; returns (exit status, seconds)."""
        env = race_env()
        command = ["./run.sh", *self.options, *args]
        if timeout is not None:  # on the whole process group: the trainer too
            command = ["timeout", "--signal=TERM", f"{max(1, int(timeout))}s", *command]
        if core is not None:
            command = ["taskset", "-c", str(core), *command]
        start = time.perf_counter()
        with open(log or os.devnull, "a") as out:
            out.write(f"# {' '.join(command)}\n")
            out.flush()
            status = subprocess.run(command, cwd=self.dir, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        return status, time.perf_counter() - start


def race_env():
    """One math thread, offline, and this tree's package first (a race can run from a worktree)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1", HF_HUB_OFFLINE="1",
                PYTHONPATH=path)


def _link(target, link):
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def stopped_by_budget(status):
    return status == 124


def train_to_budget(recipe, system, args, seconds, core, log, exp_dir):
    """One training through stage 7 until done or ``seconds``, then its inference model; returns its record."""
    started = time.time()
    status, elapsed = recipe.run(["--stage", "7", "--stop_stage", "7", *args], core=core, timeout=seconds, log=log)
    if status not in (0, 124):
        raise RuntimeError(f"{system}: stage 7 failed ({status}); see {log}")
    record = dict(seconds=elapsed, stopped_by_budget=stopped_by_budget(status), started=started)
    if stopped_by_budget(status):
        epochs = average_last_epochs(exp_dir)
        record.update(averaged_epochs=epochs,
                      trained_seconds=(exp_dir / f"{epochs[-1]}epoch.pth").stat().st_mtime - started)
    return record


def curve_marks(minutes, start, end):
    """The marks (seconds of a system's budget, multiples of ``minutes``) inside (start, end): a mark within a
    minute (half a step) of the end is left out, since the model at the end is scored anyway."""
    if not minutes:
        return []
    step = minutes * 60
    marks, mark = [], step
    while mark < end - min(60, step / 2):
        if mark > start + 1e-6:
            marks.append(mark)
        mark += step
    return marks


def curve_points(exp_dir, training, offset, marks, evaluate):
    """Points of a learning curve: at each mark (seconds of the system's budget, ``offset`` of it spent before
    this training began), the last epochs written by then, averaged and evaluated; marks before the first
    epoch are left out."""
    points = []
    if "started" not in training:  # a WaveGAN trained by a version of the race without curves
        return points
    for mark in marks:
        name = f"curve_{mark / 60:05.1f}min.pth"
        try:
            epochs = average_last_epochs(exp_dir, until=training["started"] + mark - offset, name=name)
        except RuntimeError:  # no epoch yet
            continue
        points.append(dict(minutes=mark / 60, epochs=epochs, scores=evaluate(name)))
    return points


def extraction_seconds(log, start):
    """Seconds between tts.sh's 'Stage 7b' and 'Stage 7c' lines written after byte ``start`` of ``log``,
    or None when this call found the latents stored."""
    import datetime

    text = log.read_text(errors="replace")[start:]
    stamps = {}
    for line in text.splitlines():
        for stage in ("Stage 7b: posterior", "Stage 7c:"):
            if stage in line and stage not in stamps:
                stamps[stage] = datetime.datetime.fromisoformat(line.split()[0])
    if "Stage 7b: posterior" not in stamps or "Stage 7c:" not in stamps or "is complete; delete it" in text:
        return None
    return (stamps["Stage 7c:"] - stamps["Stage 7b: posterior"]).total_seconds()


def wavegan_tag(system, vae_config, wavegan_budget):
    """One experiment per WaveGAN config and budget: reruns and variants of the prior reuse it."""
    digest = hashlib.sha1(json.dumps([vae_config, wavegan_budget], sort_keys=True).encode()).hexdigest()[:8]
    return f"{system}_wavegan_{digest}"


def run_system(recipe, system, core, budget_seconds, opts, variant, log_dir):
    """Train, decode and score one system on one core; returns its record."""
    spec = SYSTEMS[system]
    budget = budget_seconds * spec["budget"]
    configs = write_configs(recipe.dir, system, opts.overrides, variant, opts.tiny)
    name = f"{system}_{variant}" if variant else system
    log = log_dir / f"{name}.log"
    exp = recipe.dir / "exp"
    record = dict(system=system, label=spec["label"], budget_seconds=budget, core=core)
    common = ["--train_config", str(configs["tts"]), "--tag", name]
    if "wavegan" in spec:
        vae_config = yaml.safe_load(configs["wavegan"].read_text())
        wavegan_budget = budget * opts.wavegan_share
        vae_tag = wavegan_tag(system, vae_config, wavegan_budget)
        common += ["--vae_config", str(configs["wavegan"]), "--vae_tag", vae_tag]
        vae_exp = exp / f"tts_{vae_tag}"
        vae_record_file = vae_exp / "race_training.json"
        previous = json.loads(vae_record_file.read_text()) if vae_record_file.is_file() else None
        if previous and previous["config"] == vae_config and previous["budget_seconds"] == wavegan_budget:
            record["wavegan"] = previous  # a finished WaveGAN of the same config and budget
        else:
            if vae_exp.exists():
                shutil.rmtree(vae_exp)
            shutil.rmtree(recipe.dir / "dump/latents" / vae_tag, ignore_errors=True)
            wavegan = train_to_budget(recipe, system, [*common, "--train_tts", "false"], wavegan_budget, core, log, vae_exp)
            wavegan.update(config=vae_config, budget_seconds=wavegan_budget)
            vae_record_file.write_text(json.dumps(wavegan, indent=2) + "\n")
            record["wavegan"] = wavegan
        # Stage 7b (latent extraction) runs once per WaveGAN, at the start of the first prior
        # trained on it; a prior that finds the latents stored pays the recorded time too.
        extraction = record["wavegan"].get("extraction_seconds", 0.0)
        remaining = budget - record["wavegan"]["seconds"] - extraction
        log_start = log.stat().st_size if log.exists() else 0
        try:
            prior = train_to_budget(recipe, system, [*common, "--train_vae", "false"], remaining, core, log, exp / f"tts_{name}")
        finally:  # a prior that fails still leaves the latents stored: a rerun must pay their time
            measured = extraction_seconds(log, log_start)
            if measured is not None and "extraction_seconds" not in record["wavegan"]:
                record["wavegan"]["extraction_seconds"] = measured
                vae_record_file.write_text(json.dumps(record["wavegan"], indent=2) + "\n")
        prior["extraction_seconds"] = measured if measured is not None else extraction
        # Where the prior's call began on the system's clock (its learning curve's marks).
        prior["budget_offset"] = record["wavegan"]["seconds"]
        if measured is None:  # paid from the budget above, not inside this training call
            prior["seconds"] += extraction
            prior["budget_offset"] += extraction
        record["tts"] = prior
    else:
        common += ["--vae_config", ""]
        record["tts"] = train_to_budget(recipe, system, common, budget, core, log, exp / f"tts_{name}")
    record["train_seconds"] = record.get("wavegan", {}).get("seconds", 0) + record["tts"]["seconds"]
    decode_dir = exp / f"tts_{name}"

    def decode(model, score_opts=""):
        """Stages 8-9 on the held-out sentences with ``model`` of the TTS experiment: scores, decode dir, seconds."""
        args = ["--stage", "8", "--stop_stage", "9", "--inference_model", model, "--score_opts", score_opts,
                *(["--inference_args", opts.inference_args] if opts.inference_args else [])]
        tag = f"decode{_args_tag(opts.inference_args)}_{Path(model).stem}"
        shutil.rmtree(decode_dir / tag, ignore_errors=True)
        status, seconds = recipe.run([*args, *common], core=core, log=log)
        if status:
            raise RuntimeError(f"{system}: decoding or scoring {model} failed; see {log}")
        scores = decode_dir / tag / TEST_SET / "scores"
        return json.loads((scores / "summary.json").read_text()), scores.parent, seconds

    # Learning curves first (the final model's stage 9 writes RESULTS.md last): the WaveGAN phase
    # through its copy synthesis, the TTS model through synthesis.
    record["curve"] = []
    spent = 0.0
    if "wavegan" in spec:
        spent = record["wavegan"]["seconds"] + record["tts"]["extraction_seconds"]
        marks = curve_marks(opts.curve_minutes, 0, record["wavegan"]["seconds"])
        for point in curve_points(vae_exp, record["wavegan"], 0.0, marks,
                                  lambda model: copy_synthesis(recipe, vae_exp, core, log, model, dnsmos=False)["scores"]):
            record["curve"].append(dict(point, kind="copy synthesis"))
    marks = curve_marks(opts.curve_minutes, spent, record["train_seconds"])
    for point in curve_points(decode_dir, record["tts"], record["tts"].get("budget_offset", 0.0), marks,
                              lambda model: decode(model)[0]):
        record["curve"].append(dict(point, kind="tts"))
    # Stages 8-9: decode and score the held-out sentences with the final model.
    record["scores"], decoded, record["decode_seconds"] = decode("train.total_count.ave.pth", "--dnsmos true")
    record["wav_scp"] = recipe.relative(decoded / "wav/wav.scp")
    record["params"] = parameter_counts(decode_dir / "train.total_count.ave.pth")
    if "wavegan" in spec:
        record["copy_synthesis"] = copy_synthesis(recipe, vae_exp, core, log)
    return record


def _args_tag(inference_args):
    # As tts.sh's args_tag: extra decoding arguments are part of the decode dir's name.
    return inference_args.replace("--", "_").replace(" ", "").replace("=", "").replace("/", "").replace("|", "")


def copy_synthesis(recipe, vae_exp, core, log, model="train.total_count.ave.pth", dnsmos=True):
    """The WaveGAN's reconstruction of the held-out recordings (posterior mean) by ``model``, scored as stage 9 does."""
    final = model == "train.total_count.ave.pth"
    out = vae_exp / ("copy_synthesis" if final else f"copy_synthesis_{Path(model).stem}") / TEST_SET
    ref = recipe.dir / "dump/raw" / TEST_SET / "wav.scp"
    env = race_env()
    python = [sys.executable, "-m"]
    pin = ["taskset", "-c", str(core)]
    with open(log, "a") as f:
        for args in (["espnet2_glow_wavegan.recipe.copy_synthesis", "--train_config", str(vae_exp / "config.yaml"),
                      "--model_file", str(vae_exp / model), "--wav_scp", str(ref), "--out_dir", str(out)],
                     ["espnet2_glow_wavegan.recipe.score", "--ref_scp", str(ref), "--gen_scp", str(out / "wav/wav.scp"),
                      "--out_dir", str(out / "scores"), "--dnsmos", str(dnsmos).lower(), *asr_options(recipe)]):
            subprocess.run([*pin, *python, *args], env=env, stdout=f, stderr=subprocess.STDOUT, check=True)
    return dict(scores=json.loads((out / "scores/summary.json").read_text()), wav_scp=recipe.relative(out / "wav/wav.scp"))


def asr_options(recipe):
    """WER/CER as stage 9 scores them (the recipe's --lang en): the held-out texts, the default Whisper."""
    return ["--text", str(recipe.dir / "dump/raw" / TEST_SET / "text"), "--asr_language", "en", "--asr_threads", "1"]


def parameter_counts(model_file):
    from espnet2_glow_wavegan.recipe.compare import parameter_counts as count

    total, synthesis = count(model_file)
    return dict(total=total, synthesis=synthesis)


def rescore(recipe, record, log, inference_args=""):
    """Stage 9 again on every set a finished system decoded (its final model, its curve points, its
    copy synthesis), e.g. after a change of the scoring; the record's scores are replaced."""
    ref = recipe.dir / "dump/raw" / TEST_SET / "wav.scp"

    def again(wav_scp, dnsmos):
        decoded = (recipe.dir / wav_scp).parent.parent
        with open(log, "a") as f:
            subprocess.run([sys.executable, "-m", "espnet2_glow_wavegan.recipe.score", "--ref_scp", str(ref),
                            "--gen_scp", str(decoded / "wav/wav.scp"), "--out_dir", str(decoded / "scores"),
                            "--dnsmos", str(dnsmos).lower(), "--decode_logs", *map(str, decoded.glob("log/tts_inference.*.log")),
                            *asr_options(recipe)], stdout=f, stderr=subprocess.STDOUT, check=True, env=race_env())
        return json.loads((decoded / "scores/summary.json").read_text())

    record["scores"] = again(record["wav_scp"], True)
    decode_dir = (recipe.dir / record["wav_scp"]).parents[3]
    if "copy_synthesis" in record:
        record["copy_synthesis"]["scores"] = again(record["copy_synthesis"]["wav_scp"], True)
        vae_exp = (recipe.dir / record["copy_synthesis"]["wav_scp"]).parents[3]
    # Points at the end of a phase (races before curve_marks left them out) repeat its final model.
    ends = {"copy synthesis": record.get("wavegan", {}).get("seconds", 0), "tts": record["train_seconds"]}
    record["curve"] = [p for p in record.get("curve", []) if ends[p["kind"]] - 60 * p["minutes"] >= 60]
    for point in record["curve"]:
        stem = f"curve_{point['minutes']:05.1f}min"
        if point["kind"] == "tts":
            wav_scp = decode_dir / f"decode{_args_tag(inference_args)}_{stem}" / TEST_SET / "wav/wav.scp"
        else:
            wav_scp = vae_exp / f"copy_synthesis_{stem}" / TEST_SET / "wav/wav.scp"
        point["scores"] = again(recipe.relative(wav_scp), False)
    return record


def score_recordings(recipe, log, again=False):
    """The recordings scored against themselves: MCD 0 and the DNSMOS of the real audio."""
    ref = recipe.dir / "dump/raw" / TEST_SET / "wav.scp"
    out = recipe.dir / "exp/recordings" / TEST_SET / "scores"
    if again or not (out / "summary.json").is_file() or "cer" not in json.loads((out / "summary.json").read_text()):
        with open(log, "a") as f:
            subprocess.run([sys.executable, "-m", "espnet2_glow_wavegan.recipe.score", "--ref_scp", str(ref),
                            "--gen_scp", str(ref), "--out_dir", str(out), "--dnsmos", "true", *asr_options(recipe)],
                           stdout=f, stderr=subprocess.STDOUT, check=True, env=race_env())
    return dict(scores=json.loads((out / "summary.json").read_text()), wav_scp=recipe.relative(ref))


METRICS = [("wer", "WER", "{:.2f}"), ("cer", "CER", "{:.2f}"), ("mcd", "MCD [dB]", "{:.2f}"), ("log_f0_rmse", "log-F0 RMSE", "{:.3f}"), ("vuv_error", "V/UV err.", "{:.3f}"),
           ("duration_ratio", "dur. ratio", "{:.2f}"), ("dnsmos_ovrl", "DNSMOS OVRL", "{:.2f}"),
           ("dnsmos_sig", "SIG", "{:.2f}"), ("dnsmos_bak", "BAK", "{:.2f}"), ("dnsmos_p808", "P.808", "{:.2f}")]


def _cells(scores):
    return " | ".join(fmt.format(scores[key]) if scores.get(key) == scores.get(key) and key in scores else "-"
                      for key, _, fmt in METRICS)


def report(results, setup, out_dir, name="quality_race"):
    header = "| system | " + " | ".join(label for _, label, _ in METRICS) + " |"
    rule = "|---|" + "---|" * len(METRICS)
    tts = [header.replace("| system |", "| system | train time [s] (WaveGAN + prior) | params synth. / total [M] |"),
           rule + "---|---|",
           f"| recordings | - | - | {_cells(results['recordings']['scores'])} |"]
    for r in results["systems"].values():
        split = (f"{r['train_seconds']:.0f} ({r['wavegan']['seconds']:.0f} + {r['tts']['seconds']:.0f})"
                 if "wavegan" in r else f"{r['train_seconds']:.0f}")
        p = r["params"]
        tts.append(f"| {r['label']} | {split} | {p['synthesis'] / 1e6:.2f} / {p['total'] / 1e6:.2f} "
                   f"| {_cells(r['scores'])} |")
    reconstruction = [header, rule, f"| recordings | {_cells(results['recordings']['scores'])} |"]
    for r in results["systems"].values():
        if "copy_synthesis" in r and not r["system"].endswith("_half"):
            kind = "inner-GAN (mel)" if r["system"] == "glow_mel" else "WaveGAN (z)"
            reconstruction.append(f"| {kind}, copy synthesis after {r['wavegan']['seconds']:.0f} s "
                                  f"| {_cells(r['copy_synthesis']['scores'])} |")
    text = "\n".join([
        f"# Quality race: {setup['budget_minutes']:g} minutes of one CPU core per system",
        "",
        f"Corpus: {setup['corpus']}. Held out: {setup['held_out']} sentences ({TEST_SET}), scored against the "
        "recordings (MCD with DTW on WORLD mel-cepstra, log-F0 RMSE on frames voiced in both, V/UV error, "
        "duration ratio; lower is better, ratio near 1) and by DNSMOS (higher is better; a naturalness proxy "
        "trained on noisy and enhanced speech, not a MOS test of TTS).",
        f"Machine: {setup['machine']}; rounds: {setup['rounds']}; WaveGAN share of a two-stage budget: "
        f"{setup['wavegan_share']:g}; decoding: {setup['inference_args'] or 'the configs defaults'}.",
        "",
        "## Text to speech",
        "",
        *tts,
        "",
        "## Reconstruction (copy synthesis of the held-out recordings)",
        "",
        *reconstruction,
        "",
        *learning_curves(results),
    ])
    (out_dir / f"{name}.md").write_text(text)
    (out_dir / f"{name}.json").write_text(json.dumps(dict(setup=setup, **results), indent=2) + "\n")
    return text


def learning_curves(results):
    """Markdown: WER/CER (and MCD) of each system at each mark of its budget, the final model last."""
    rows = []
    for r in results["systems"].values():
        points = [*r.get("curve", [])]
        if "copy_synthesis" in r:
            points.append(dict(minutes=r["wavegan"]["seconds"] / 60, kind="copy synthesis", scores=r["copy_synthesis"]["scores"]))
        points.append(dict(minutes=r["train_seconds"] / 60, kind="tts", scores=r["scores"]))
        for p in sorted(points, key=lambda p: (p["minutes"], p["kind"])):
            cells = " | ".join(fmt.format(p["scores"][k]) if p["scores"].get(k) is not None else "-"
                               for k, fmt in (("wer", "{:.2f}"), ("cer", "{:.2f}"), ("mcd", "{:.2f}")))
            rows.append(f"| {r['label']} | {p['minutes']:.1f} | {p['kind']} | {cells} |")
    if not rows:
        return []
    floor = results["recordings"]["scores"]
    return ["## Learning curves (held-out sentences, the average of the last 3 epochs at each mark)", "",
            f"Recordings: WER {floor.get('wer', float('nan')):.2f}, CER {floor.get('cer', float('nan')):.2f} "
            "(the ASR's floor on this voice). A two-stage system has no TTS before its prior starts: its "
            "WaveGAN's copy synthesis is the curve until then.", "",
            "| system | minutes | output | WER | CER | MCD |", "|---|---|---|---|---|---|", *rows, ""]


def picture(results, recipe_dir, path, utt=None):
    import librosa
    import matplotlib
    import numpy as np
    import soundfile as sf

    from espnet2_glow_wavegan.recipe.kaldi_dir import read_table

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("recording", results["recordings"]["wav_scp"])]
    for r in results["systems"].values():
        rows.append((r["label"], r["wav_scp"]))
        if "copy_synthesis" in r and not r["system"].endswith("_half"):
            kind = "inner-GAN (mel)" if r["system"] == "glow_mel" else "WaveGAN (z)"
            rows.append((f"{kind} copy synthesis", r["copy_synthesis"]["wav_scp"]))
    tables = [(title, read_table(recipe_dir / scp)) for title, scp in rows]
    utt = utt or sorted(tables[0][1])[0]
    fig, axes = plt.subplots(len(tables), 1, figsize=(10, 2.2 * len(tables)), sharex=True)
    for ax, (title, table) in zip(axes, tables):
        wav, fs = sf.read(recipe_dir / table[utt], dtype="float32")
        mel = librosa.feature.melspectrogram(y=wav, sr=fs, n_fft=1024, hop_length=256, n_mels=80)
        ax.imshow(np.log(np.maximum(mel, 1e-5)), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(f"{utt}: {title}", fontsize=9)
        ax.set_ylabel("mel band")
    axes[-1].set_xlabel("frame (256 samples)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def side_by_side(jobs, cores):
    """``{name: job(core) -> record}``, each job in its own thread on its own core; returns the records.

    A job that fails lets the others finish, then stops the run with every error."""
    records, errors = {}, []

    def one(name, job, core):
        try:
            records[name] = job(core)
            print(f"  {name}: {json.dumps(records[name]['scores'])}", flush=True)
        except Exception as e:
            errors.append(f"{name}: {e}")

    threads = [threading.Thread(target=one, args=(name, job, core)) for (name, job), core in zip(jobs.items(), cores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("; ".join(errors))
    return records


def parse_overrides(items):
    overrides = {}
    for item in items:
        target, _, assignment = item.partition(":")
        key, _, value = assignment.partition("=")
        system, _, role = target.partition(".")
        if system not in SYSTEMS or role not in ("wavegan", "tts") or not key or not _:
            raise SystemExit(f"--set {item}: expected SYSTEM.ROLE:KEY.PATH=VALUE (SYSTEM in {list(SYSTEMS)}, "
                             "ROLE wavegan or tts)")
        overrides.setdefault((system, role), []).append((key, yaml.safe_load(value)))
        if system == "glow_wavegan" and role == "tts" or system == "glow_wavegan" and role == "wavegan":
            # The half-budget run is the same system: the same settings.
            overrides.setdefault(("glow_wavegan_half", role), []).append((key, yaml.safe_load(value)))
    return overrides


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--budget_minutes", type=float, default=50.0, help="training time per system")
    parser.add_argument("--wavegan_share", type=float, default=0.75,
                        help="share of a two-stage system's budget spent on its WaveGAN (the rest: latents + prior)")
    parser.add_argument("--rounds", default=";".join(",".join(r) for r in ROUNDS),
                        help="systems per round, two per round (one per core), rounds separated by ';'")
    parser.add_argument("--cores", default="0,1", help="the cores of a round's first and second system")
    parser.add_argument("--inference_args", default="", help="decoding options for stage 8 (e.g. '--noise_scale 0.5')")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SYSTEM.ROLE:KEY=VALUE")
    parser.add_argument("--variant", default="", help="suffix of this run's experiment names (with --set)")
    parser.add_argument("--sentences", type=int, default=260)
    parser.add_argument("--held_out", type=int, default=20, help="sentences in dev and in eval1 each")
    parser.add_argument("--tiny", action="store_true",
                        help="the recipe's tiny configs: a smoke run of the race itself (with --corpus corpora/mini_ljspeech)")
    parser.add_argument("--corpus", type=Path, help="an LJSpeech-layout corpus to race on instead of the generated one")
    parser.add_argument("--voice", default="piper",
                        help="the corpus voice: piper (joe-medium, human-like) or an espeak-ng voice (en-us: the earlier races)")
    parser.add_argument("--curve_minutes", type=float, default=10.0,
                        help="a learning-curve point every this many minutes of a system's budget (0: none)")
    parser.add_argument("--work_dir", type=Path, help=f"default: {os.path.relpath(WORK_DIR, ROOT)}[_<voice>]")
    parser.add_argument("--rescore", action="store_true",
                        help="train nothing: score the systems of --rounds that a finished race left in the work "
                             "folder again (stage 9 on every decoded set), and write the report")
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args(argv)
    args.overrides = parse_overrides(args.overrides)
    rounds = [[s for s in r.split(",") if s] for r in args.rounds.split(";") if r]
    unknown = sorted({s for r in rounds for s in r} - set(SYSTEMS))
    if unknown or any(len(r) > 2 for r in rounds):
        raise SystemExit(f"--rounds: up to two of {list(SYSTEMS)} per round (unknown: {unknown})")
    for tool in ("taskset", "timeout"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (util-linux / coreutils)")

    if args.work_dir is None:  # one work folder a voice: stages 1-6 of one corpus are not reused for another
        args.work_dir = WORK_DIR if args.voice == "en-us" else WORK_DIR.with_name(f"{WORK_DIR.name}_{args.voice}")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    corpus_root = args.corpus or args.work_dir / "corpus"
    if args.corpus is None:
        race_corpus.build(corpus_root, args.sentences, voice=args.voice)
    recipe = Recipe(args.work_dir, corpus_root.resolve(), args.held_out)
    log_dir = args.work_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    first = rounds[0][0]
    configs = write_configs(recipe.dir, first, args.overrides, args.variant, args.tiny)
    print(f"stages 1-6 in {recipe.dir} (log: {log_dir}/data.log)", flush=True)
    data_stages = ["--train_config", str(configs["tts"]), "--vae_config", str(configs.get("wavegan", ""))]
    # Stage 1 checks every set's data dir: dev_small is made from dev after it.
    status, _ = recipe.run(["--stage", "1", "--stop_stage", "1", *data_stages, "--valid_set", "dev"],
                           log=log_dir / "data.log")
    if not status:
        recipe.make_valid_subset()
        status, _ = recipe.run(["--stage", "2", "--stop_stage", "6", *data_stages], log=log_dir / "data.log")
    if status:
        raise SystemExit(f"stages 1-6 failed; see {log_dir}/data.log")

    results = {"recordings": score_recordings(recipe, log_dir / "data.log", again=args.rescore), "systems": {}}
    def train_and_keep(system, core):
        record = run_system(recipe, system, core, args.budget_minutes * 60, args, args.variant, log_dir)
        name = f"{system}_{args.variant}" if args.variant else system
        (log_dir / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        return record

    cores = [int(c) for c in args.cores.split(",")]
    for number, systems in enumerate([] if args.rescore else rounds, 1):
        print(f"round {number}: {', '.join(systems)} ({args.budget_minutes:g} min budget)", flush=True)
        results["systems"].update(side_by_side({s: functools.partial(train_and_keep, s) for s in systems}, cores))

    if args.rescore:
        for system in (s for r in rounds for s in r):
            name = f"{system}_{args.variant}" if args.variant else system
            record_file = log_dir / f"{name}.json"
            if not record_file.is_file():
                raise SystemExit(f"--rescore: {record_file} is missing: {system} has not finished a race in {args.work_dir}")
            record = rescore(recipe, json.loads(record_file.read_text()), log_dir / f"{name}.log", args.inference_args)
            record_file.write_text(json.dumps(record, indent=2) + "\n")
            results["systems"][system] = record
    ordered = {s: results["systems"][s] for r in rounds for s in r}
    results["systems"] = ordered
    held_out = len((recipe.dir / "dump/raw" / TEST_SET / "wav.scp").read_text().splitlines())
    setup = dict(budget_minutes=args.budget_minutes, wavegan_share=args.wavegan_share, rounds=rounds,
                 inference_args=args.inference_args, variant=args.variant,
                 overrides={f"{s}.{r}": v for (s, r), v in args.overrides.items()},
                 corpus=(f"{args.sentences} generated sentences (benchmarks/race_corpus.py), "
                         + ("Piper en_US-joe-medium" if args.voice == "piper" else f"espeak-ng {args.voice}")
                         if args.corpus is None else str(args.corpus)),
                 curve_minutes=args.curve_minutes,
                 held_out=held_out, machine=f"{platform.platform()}, {os.cpu_count()} cores, one core per system")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    # The espeak-ng races kept their names; a race on another voice is named after it.
    name = "quality_race" + ("" if args.voice == "en-us" or args.corpus else f"_{args.voice}")
    name += f"_{args.variant}" if args.variant else ""
    text = report(results, setup, args.out_dir, name)  # a variant's report leaves the default one alone
    picture(results, recipe.dir, args.out_dir / f"{name}.png")
    print(text)


if __name__ == "__main__":
    main()
