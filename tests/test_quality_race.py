"""The quality race: its corpus, and a smoke run of the whole script on tiny configs (not a race)."""

import importlib.util
import json
import subprocess
import sys

import pytest
import yaml

from conftest import CORPORA, REPO

_spec = importlib.util.spec_from_file_location("race_corpus", REPO / "benchmarks/race_corpus.py")
race_corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(race_corpus)
_spec = importlib.util.spec_from_file_location("quality_race", REPO / "benchmarks/quality_race.py")
quality_race = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quality_race)


def test_the_race_corpus_is_new_distinct_and_the_same_every_time():
    sentences = race_corpus.sentences(260)
    assert sentences == race_corpus.sentences(260) and len(set(sentences)) == 260
    assert sentences != race_corpus.sentences(260, seed=1)
    mini = {line.split("|")[2] for line in (CORPORA / "mini_ljspeech/LJSpeech-1.1/metadata.csv").read_text().splitlines()}
    assert not mini & set(sentences)
    words = [len(s.split()) for s in sentences]
    assert min(words) >= 6 and max(words) <= 25  # 2-7 s of speech at espeak-ng's 165 words a minute
    assert all(s[0].isupper() and s[-1] in ".?" for s in sentences)


def test_learning_curve_points_average_the_epochs_written_by_each_mark(tmp_path):
    """A point at minute m of a system's budget: the last 3 epochs written by then (the training having begun at
    ``offset`` of the budget), averaged under its own name; the final model is left alone."""
    import os

    import torch

    started = 1_000_000.0
    for epoch in range(1, 6):  # epoch n written n minutes after the training began
        path = tmp_path / f"{epoch}epoch.pth"
        torch.save({"w": torch.tensor([float(epoch)])}, path)
        os.utime(path, (started + 60 * epoch, started + 60 * epoch))
    # Marks strictly inside the training: every 2 min of a 10-min budget of which 3 min went before it.
    marks = quality_race.curve_marks(2, 3 * 60, 10 * 60)
    assert marks == [240, 360, 480] and quality_race.curve_marks(2, 0, 8 * 60 + 5) == [120, 240, 360]
    seen = []
    points = quality_race.curve_points(tmp_path, {"started": started}, 3 * 60, marks,
                                       lambda name: seen.append(name) or {"model": name})
    assert [p["epochs"] for p in points] == [[1], [1, 2, 3], [3, 4, 5]]  # 1, 3 and 5 min into the training
    assert [p["minutes"] for p in points] == [4, 6, 8] and seen == ["curve_004.0min.pth", "curve_006.0min.pth",
                                                                      "curve_008.0min.pth"]
    assert torch.load(tmp_path / "curve_006.0min.pth", weights_only=True)["w"].item() == 2.0
    assert not (tmp_path / "train.total_count.ave.pth").exists()
    # A mark before the first epoch gives no point.
    assert quality_race.curve_points(tmp_path, {"started": started}, 0, [30], lambda name: {}) == []
    assert quality_race.curve_marks(0, 0, 600) == []


def test_the_piper_corpus_is_a_human_like_voice_and_rebuilt_for_another_voice(tmp_path):
    import soundfile as sf

    corpus = race_corpus.build(tmp_path, count=2, voice="piper")
    wavs = sorted((corpus / "wavs").glob("*.wav"))
    assert [w.name for w in wavs] == ["RC001-0001.wav", "RC001-0002.wav"] and (corpus / "voice").read_text() == "piper\n"
    first = sf.read(wavs[0])[0]
    assert sf.info(wavs[0]).samplerate == 22050 and 1.0 < len(first) / 22050 < 8.0
    assert race_corpus.build(tmp_path, count=2, voice="piper") == corpus  # complete: kept
    assert (first == sf.read(wavs[0])[0]).all()
    # A corpus of another voice (an earlier race's espeak-ng one has no stamp) is made again.
    (corpus / "voice").unlink()
    sf.write(wavs[0], first[:100], 22050)
    race_corpus.build(tmp_path, count=2, voice="piper")
    assert (corpus / "voice").read_text() == "piper\n" and (sf.read(wavs[0])[0] == first).all()


def test_variants_of_a_system_write_their_own_configs(tmp_path):
    """Two variants run side by side (one race each, one core each): neither overwrites the other's WaveGAN config."""
    overrides = quality_race.parse_overrides(["glow_wavegan.wavegan:tts_conf.generator_params.latent_dim=128"])
    wide = quality_race.write_configs(tmp_path, "glow_wavegan", overrides, "wide")
    base = quality_race.write_configs(tmp_path, "glow_wavegan", {}, "base")
    assert wide["wavegan"] != base["wavegan"] and wide["tts"] != base["tts"]
    latent_dim = {name: yaml.safe_load(paths["wavegan"].read_text())["tts_conf"]["generator_params"]["latent_dim"]
                  for name, paths in (("wide", wide), ("base", base))}
    assert latent_dim == {"wide": 128, "base": quality_race.RACE_SIZE["wavegan"]["tts_conf.generator_params.latent_dim"]}


BUDGET_MINUTES = 8


@pytest.mark.slow
def test_the_race_runs_end_to_end_on_tiny_configs(tmp_path):
    """One round on the mini corpus (glow_wavegan against VITS): both train through the recipe, decode and score,
    the WaveGAN copy-synthesises; the report is whole. (The Glow-TTS + inner-GAN configs run in the recipe tests.)"""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/quality_race.py"), "--tiny", "--corpus", str(CORPORA / "mini_ljspeech"),
         # The tiny configs stop themselves after two short epochs; the budget is only a ceiling, wide
         # enough for a slow, busy CI machine (3 minutes left the prior no epoch on one). The stop by
         # budget and its checkpoint average are tested exactly below.
         "--held_out", "4", "--budget_minutes", str(BUDGET_MINUTES), "--wavegan_share", "0.5", "--curve_minutes", "0.2",
         "--rounds", "glow_wavegan,vits",
         "--work_dir", str(tmp_path / "work"), "--out_dir", str(out)],
        capture_output=True, text=True, timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads((out / "quality_race.json").read_text())
    assert list(report["systems"]) == ["glow_wavegan", "vits"]
    for record in report["systems"].values():
        assert record["scores"]["num_utts"] == 4 and record["scores"]["mcd"] > 0 and "dnsmos_ovrl" in record["scores"]
        assert 0 < record["train_seconds"] <= BUDGET_MINUTES * 60 + 30  # within the budget (and the last job's shutdown)
    record = report["systems"]["glow_wavegan"]  # two stages; the WaveGAN's share of the budget first
    assert record["wavegan"]["budget_seconds"] == pytest.approx(0.5 * BUDGET_MINUTES * 60)
    assert record["copy_synthesis"]["scores"]["num_utts"] == 4
    assert report["recordings"]["scores"]["mcd"] == 0
    assert report["recordings"]["scores"]["wer"] == report["recordings"]["scores"]["wer_recordings"]
    assert all("wer" in r["scores"] and "cer" in r["scores"] for r in report["systems"].values())
    # A point every 0.2 min (the tiny models' epochs may all come after the first marks: the points' choice of
    # epochs is tested exactly above); each point is scored as the final model is.
    for record in report["systems"].values():
        assert all(p["kind"] in ("tts", "copy synthesis") and "wer" in p["scores"] for p in record["curve"])
    text = (out / "quality_race.md").read_text()
    assert "## Text to speech" in text and "## Reconstruction" in text and "| ESPnet VITS |" in text
    assert "## Learning curves" in text
    assert (out / "quality_race.png").stat().st_size > 10_000
    # The race's WaveGAN, read by benchmarks/latent_use.py (does its decoder follow the input?).
    recipe = tmp_path / "work/tts1"
    vae_exp = next((recipe / "exp").glob("tts_glow_wavegan_wavegan_*"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/latent_use.py"), "--train_config", str(vae_exp / "config.yaml"),
         "--model_file", str(vae_exp / "train.total_count.ave.pth"), "--wav_scp", str(recipe / "dump/raw/eval1/wav.scp"),
         "--utterances", "2"],
        capture_output=True, text=True, timeout=300, cwd=recipe,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines() if line.startswith("| ")]
    signal, noise = (float(x) for x in rows[1][1].split("/"))
    assert signal > 0 and noise > 0 and -1 <= float(rows[1][2]) <= 1 and float(rows[1][3]) > 0
    assert [int(r[0]) for r in rows[3:]] == list(range(1, 11))


def test_the_joint_phase_experiment_changes_only_the_phase_and_its_batches(tmp_path):
    """benchmarks/joint_phase.py: its prior arm trains the race's own prior config on; the joint arm differs in
    the phase, the input it needs (the waveform) and the batch size in those units."""
    _spec = importlib.util.spec_from_file_location("joint_phase", REPO / "benchmarks/joint_phase.py")
    joint_phase = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(joint_phase)
    source = quality_race.write_configs(tmp_path, "glow_wavegan", {}, "base")["tts"]
    recipe = type("Recipe", (), {"dir": tmp_path})()
    paths = joint_phase.arm_configs(recipe, "glow_wavegan_base")
    base, prior, joint = (yaml.safe_load(p.read_text()) for p in (source, paths["prior"], paths["joint"]))
    assert prior == base and base["tts_conf"]["training_phase"] == "prior"
    changed = {k for k in base if base[k] != joint[k]} | {f"tts_conf.{k}" for k in base["tts_conf"]
                                                          if base["tts_conf"][k] != joint["tts_conf"][k]}
    assert changed == {"tts_conf", "tts_conf.training_phase", "tts_conf.speech_input", "batch_bins", "num_iters_per_epoch"}
    assert joint["tts_conf"]["speech_input"] == "waveform"
    assert joint["batch_bins"] == quality_race.RACE_SIZE["wavegan"]["batch_bins"]


def test_side_by_side_jobs_get_their_cores_and_a_failure_waits_for_the_other():
    finished = []

    def job(name, fail, core):
        if fail:
            raise RuntimeError("broken")
        finished.append(name)
        return {"scores": {"core": core}}

    assert quality_race.side_by_side({"a": lambda c: job("a", False, c), "b": lambda c: job("b", False, c)}, [0, 1]) \
        == {"a": {"scores": {"core": 0}}, "b": {"scores": {"core": 1}}}
    with pytest.raises(SystemExit, match="^b: broken$"):
        quality_race.side_by_side({"a": lambda c: job("a2", False, c), "b": lambda c: job("b", True, c)}, [0, 1])
    assert "a2" in finished
