"""The LJSpeech recipe end to end on the bundled mini corpus (stages 1-11, VITS beside it, the paper's comparison), in a scratch copy."""

import shutil
import subprocess
import sys
import textwrap
import zipfile

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from conftest import CORPORA
from recipe_helpers import DECODE, assert_consistent_data_dir, recipe_copy, run, table

# Stock ESPnet entry points in subprocesses: minutes (deselect with -m 'not slow').
pytestmark = pytest.mark.slow


HF_REPO = "test-user/glow-wavegan-ljspeech-mini"


@pytest.fixture(scope="module")
def lj_recipe(tmp_path_factory):
    """Stages 1-11 (upload as a dry run), then the VITS baseline and the comparison table.

    One job per stage (the AISHELL-3 test runs the split jobs): every job pays ESPnet's start-up.
    The paper ablation, shared by both recipes (egs2/TEMPLATE/tts1/comparisons.sh), runs in the
    AISHELL-3 test.
    """
    recipe = recipe_copy(tmp_path_factory.mktemp("lj"), "ljspeech")
    proc = run(recipe, "--nj", "1", "--inference_nj", "1", "--stop_stage", "11", "--hf_repo", HF_REPO, "--hf_dry_run", "true", "--vits_baseline", "true",
               "--score_opts", "--dnsmos true", "--export_onnx", "true")
    return recipe, proc


def test_ljspeech_data_and_dump_dirs(lj_recipe):
    recipe, proc = lj_recipe
    assert "using the bundled mini corpus" in proc.stderr
    sizes = {name: len(assert_consistent_data_dir(recipe / "data" / name)) for name in ("tr_no_dev", "dev", "eval1")}
    assert sizes == {"tr_no_dev": 32, "dev": 4, "eval1": 4}
    for dump in ("dump/raw/org/tr_no_dev", "dump/raw/tr_no_dev", "dump/raw/eval1"):
        keys = assert_consistent_data_dir(recipe / dump)
        lengths = dict(table(recipe / dump / "utt2num_samples"))
        for utt, path in table(recipe / dump / "wav.scp")[:5]:
            info = sf.info(path)
            assert info.samplerate == 22050 and info.channels == 1 and info.frames == int(lengths[utt])
        assert sorted(lengths) == keys


def test_ljspeech_token_list(lj_recipe):
    recipe, _ = lj_recipe
    tokens = (recipe / "dump/token_list/char_tacotron/tokens.txt").read_text().split("\n")[:-1]
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert {"A", "E", "<space>"} <= set(tokens)
    # The tacotron cleaner expanded "9", "$4", "Dr." ...: no digits or '$' remain.
    assert not any(t.isdigit() or t == "$" for t in tokens)


def test_ljspeech_decoding_outputs(lj_recipe):
    recipe, proc = lj_recipe
    for dset, n in (("dev", 4), ("eval1", 4)):
        out = recipe / DECODE / dset
        scp = table(out / "wav" / "wav.scp")
        assert [u for u, _ in scp] == sorted(u for u, _ in table(recipe / "data" / dset / "text"))
        for utt, path in scp:
            wav, fs = sf.read(path)
            assert fs == 22050 and np.isfinite(wav).all() and len(wav) > 0
        durations = dict(table(out / "durations"))
        assert len(durations) == n
        utt, path = scp[0]
        assert sum(int(d) for d in durations[utt].split()) * 256 == sf.info(path).frames
        assert len(list((out / "att_ws").glob("*.png"))) == n
    assert (recipe / "exp/tts_wavegan_vae_tiny/train.total_count.ave.pth").exists()
    assert (recipe / "exp/tts_glow_wavegan_tiny/train.log").exists()


LATENTS = "dump/latents/wavegan_vae_tiny"


def test_ljspeech_stage_7b_stores_the_wavegan_posterior_for_the_prior(lj_recipe, monkeypatch):
    recipe, proc = lj_recipe
    monkeypatch.chdir(recipe)  # scp entries are relative to the recipe dir, as in ESPnet's dumps
    import hashlib
    import json

    import yaml

    vae_model = recipe / "exp/tts_wavegan_vae_tiny/train.total_count.ave.pth"
    for dset in ("tr_no_dev", "dev"):
        out = recipe / LATENTS / dset
        assert (out / ".done").exists()
        samples = {u: int(n) for u, n in table(recipe / "dump/raw" / dset / "utt2num_samples")}
        stats = dict(kaldiio.load_scp(str(out / "stats.scp")))
        assert sorted(stats) == sorted(samples)  # every utterance of the set, once
        shapes = dict(table(out / "speech_shape"))
        for utt, matrix in stats.items():
            assert matrix.shape == (samples[utt] // 256 + 1, 2 * 16) and np.isfinite(matrix).all()
            assert shapes[utt] == f"{matrix.shape[0]},{matrix.shape[1]}"
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["model_sha256"] == hashlib.sha256(vae_model.read_bytes()).hexdigest()
        assert manifest["utterances"] == len(samples)
    # The prior trained on them, with the stored statistics as its 'speech'.
    config = yaml.safe_load((recipe / "exp/tts_glow_wavegan_tiny/config.yaml").read_text())
    assert config["tts_conf"]["speech_input"] == "posterior_stats"
    assert [f"{LATENTS}/tr_no_dev/stats.scp", "speech", "kaldi_ark"] in config["train_data_path_and_name_and_type"]
    assert f"{LATENTS}/tr_no_dev/speech_shape" in config["train_shape_file"]
    assert json.loads((recipe / "exp/tts_glow_wavegan_tiny/wavegan_latents.json").read_text())["model_sha256"] == \
        manifest["model_sha256"]


def test_ljspeech_rerun_keeps_results_and_missing_inputs_are_named(lj_recipe):
    recipe, _ = lj_recipe
    watched = [recipe / "data/tr_no_dev/text", recipe / DECODE / "eval1/wav/LJ001-0037.wav",
               recipe / "exp/tts_glow_wavegan_tiny/train.total_count.ave.pth", recipe / LATENTS / "tr_no_dev/stats.scp"]
    before = [(p.stat().st_mtime_ns, p.read_bytes()) for p in watched]
    # The fixture's scoring and export options: stages 9 and 10 score, export and pack again.
    proc = run(recipe, "--score_opts", "--dnsmos true", "--export_onnx", "true")
    assert "data/ is complete" in proc.stderr and "delete it to decode again" in proc.stderr
    assert f"Stage 7b: {LATENTS}/tr_no_dev is complete" in proc.stderr
    assert [(p.stat().st_mtime_ns, p.read_bytes()) for p in watched] == before
    bad = run(recipe, "--stage", "8", "--stop_stage", "8", "--inference_model", "missing.pth", check=False)
    assert bad.returncode != 0
    assert "missing input exp/tts_glow_wavegan_tiny/missing.pth" in bad.stderr


def test_decoding_warns_about_text_the_cleaner_transliterates(lj_recipe, tmp_path):
    recipe, _ = lj_recipe
    text = tmp_path / "text"
    text.write_text("u_odd see \u00a7\u00a7\u00a7 below.\nu_fine see below.\n", encoding="utf-8")
    exp = recipe / "exp/tts_glow_wavegan_tiny"
    proc = subprocess.run(
        [sys.executable, "-m", "espnet2_glow_wavegan.bin.tts_inference", "--ngpu", "0",
         "--data_path_and_name_and_type", f"{text},text,text", "--train_config", "exp/tts_glow_wavegan_tiny/config.yaml",
         "--model_file", "exp/tts_glow_wavegan_tiny/train.total_count.ave.pth", "--output_dir", str(tmp_path / "out")],
        cwd=recipe, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "utterance u_odd: the text cleaner replaced characters" in proc.stderr and "'\u00a7'" in proc.stderr
    assert "utterance u_fine" not in proc.stderr
    assert (exp / "config.yaml").exists() and len(list((tmp_path / "out/wav").glob("*.wav"))) == 2


def test_latents_of_another_wavegan_are_refused(lj_recipe):
    """A WaveGAN model that changed after stage 7b: neither the latents nor the prior trained on them are reused."""
    recipe, _ = lj_recipe
    exp = recipe / "exp/tts_wavegan_vae_tiny"
    averaged = (exp / "train.total_count.ave.pth").resolve()
    original = averaged.read_bytes()
    latents = recipe / LATENTS
    aside = recipe / "latents_aside"
    try:
        averaged.write_bytes((exp / "1epoch.pth").read_bytes())  # as if the WaveGAN had been trained further
        proc = run(recipe, "--stage", "7", "--stop_stage", "7", check=False)
        assert proc.returncode != 0
        assert f"{LATENTS}/tr_no_dev holds latents of another WaveGAN" in proc.stderr
        assert f"delete {LATENTS} to extract them again" in proc.stderr
        latents.rename(aside)  # the user deletes them: extracted again, then the old prior is refused
        proc = run(recipe, "--stage", "7", "--stop_stage", "7", check=False)
        assert proc.returncode != 0 and "Stage 7b: posterior of" in proc.stderr
        assert "exp/tts_glow_wavegan_tiny was trained on latents of another WaveGAN" in proc.stderr
    finally:
        averaged.write_bytes(original)
        if aside.exists():
            shutil.rmtree(latents, ignore_errors=True)
            aside.rename(latents)


def test_ljspeech_scores_and_comparison_with_vits(lj_recipe):
    recipe, _ = lj_recipe
    import json

    for system in ("glow_wavegan_tiny", "vits_tiny"):
        out = recipe / "exp" / f"tts_{system}" / "decode_train.total_count.ave" / "eval1" / "scores"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["num_utts"] == 4
        for metric in ("mcd", "log_f0_rmse", "vuv_error", "duration_ratio", "rtf"):
            assert np.isfinite(summary[metric]) and summary[metric] >= 0, (system, metric)
        for metric in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"):  # --score_opts "--dnsmos true"
            assert 1.0 <= summary[metric] <= 5.0, (system, metric, summary[metric])
        assert len(table(out / "utt2mcd")) == 4
        # Stage 9 hears the words by default (--lang en): Whisper's WER/CER beside its floor on the recordings.
        assert summary["asr"].startswith("Whisper tiny.en") and summary["wer_recordings"] <= 0.5
        assert summary["wer"] >= 0 and summary["cer"] >= 0 and len(table(out / "utt2wer")) == 4
        assert len(table(out / "asr_text_recordings")) == 4
        assert "| eval1 |" in (recipe / "exp" / f"tts_{system}" / "RESULTS.md").read_text()
    rows = json.loads((recipe / "RESULTS_compare.json").read_text())
    assert [r["system"] for r in rows] == ["glow_wavegan", "vits"]
    assert all(r["params_synthesis"] > 0 and np.isfinite(r["mcd"]) and np.isfinite(r["rtf"]) for r in rows)
    table_md = (recipe / "RESULTS_compare.md").read_text()
    assert "| glow_wavegan | tts_glow_wavegan_tiny | eval1 |" in table_md and "| vits | tts_vits_tiny | eval1 |" in table_md
    assert "DNSMOS ovrl / P.808" in table_md and "| WER (rec.) | CER (rec.) |" in table_md
    assert f"{rows[0]['wer_recordings']:.2f})" in table_md


def test_packed_model_synthesises_in_a_fresh_process(lj_recipe, python_run, tmp_path):
    recipe, _ = lj_recipe
    packed = recipe / "exp/tts_glow_wavegan_tiny/tts_glow_wavegan_tiny_train.total_count.ave.zip"
    assert packed.exists()
    moved = tmp_path / "model.zip"  # away from the experiment: only the zip counts
    shutil.copy(packed, moved)
    script = textwrap.dedent(
        f"""
        import json
        from espnet2.bin.tts_inference import Text2Speech
        from espnet2.main_funcs.pack_funcs import unpack
        files = unpack("{moved}", "{tmp_path / 'unpacked'}")
        t2s = Text2Speech.from_pretrained(**files)
        out = t2s("Hello from a packed model.")
        np.save("{tmp_path / 'torch.npy'}", t2s("Hello, world.", decode_conf={{"noise_scale": 0.0}})["wav"].numpy())
        print(json.dumps({{"keys": sorted(files), "n": out["wav"].numel(), "fs": t2s.fs,
                          "type": type(t2s.tts).__name__, "speech_input": t2s.tts.speech_input}}))
        """
    )
    import json

    out = json.loads(python_run(["-c", "import numpy as np\n" + script], cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert out["type"] == "GlowWaveGAN" and out["fs"] == 22050 and out["n"] > 0
    assert {"train_config", "model_file"} <= set(out["keys"])
    # A prior trained on stored latents synthesises from the zip alone.
    assert out["speech_input"] == "posterior_stats"
    # Stage 10's ONNX export (--export_onnx true), in the zip (ESPnet's unpack extracts only the model's own
    # files): the same waveform in a process without torch.
    with zipfile.ZipFile(moved) as z:
        z.extractall(tmp_path / "extracted")
    onnx_dirs = [p.parent for p in (tmp_path / "extracted").rglob("decoder.onnx")]
    assert len(onnx_dirs) == 1
    script = textwrap.dedent(
        f"""
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("no torch here")
        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech
        wav = OnnxText2Speech("{onnx_dirs[0]}")("Hello, world.", noise_scale=0.0)["wav"]
        reference = np.load("{tmp_path / 'torch.npy'}")
        print("relative error", np.abs(wav - reference).max() / np.sqrt(np.mean(reference ** 2)), wav.shape == reference.shape)
        """
    )
    line = python_run(["-c", script], cwd=tmp_path).stdout.strip().splitlines()[-1]
    assert line.startswith("relative error") and line.endswith("True")
    assert float(line.split()[2]) < 1e-4


def test_hugging_face_dry_run_folder(lj_recipe):
    recipe, proc = lj_recipe
    folder = recipe / "exp/tts_glow_wavegan_tiny" / ("hf_" + HF_REPO.replace("/", "_"))
    assert "dry run" in proc.stdout + proc.stderr
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "text-to-speech" in card and "- espnet" in card
    assert "not on PyPI" in card and "pip install ." in card and "python -m build" in card and "Text2Speech(" in card
    assert "| glow_wavegan |" in card and "tts: glow_wavegan" in card
    assert "espnet2_glow_wavegan.onnx.runtime --model_dir" in card and list(folder.rglob("decoder.onnx"))
    import yaml

    meta = yaml.safe_load((folder / "meta.yaml").read_text())
    assert (folder / meta["files"]["model_file"]).exists()  # the averaged model the symlink named
    assert (folder / meta["yaml_files"]["train_config"]).exists()


def test_truncated_checkpoint_is_set_aside_with_a_message(lj_recipe):
    recipe, _ = lj_recipe
    exp = recipe / "exp/tts_broken"
    exp.mkdir()
    (exp / "checkpoint.pth").write_bytes(b"PK\x03\x04 truncated")
    proc = run(recipe, "--stage", "7", "--stop_stage", "7", "--train_vae", "false", "--tag", "broken",
               "--train_config", "conf/tuning/train_glow_wavegan_tiny.yaml", check=False)
    assert proc.returncode != 0 and "checkpoint.pth was truncated" in proc.stderr
    assert not (exp / "checkpoint.pth").exists() and list(exp.glob("checkpoint.pth.truncated.*"))


def test_reruns_with_new_arguments_get_new_dirs(lj_recipe):
    """As in ESPnet, --train_args / --inference_args are part of the experiment and decode tags."""
    recipe, _ = lj_recipe
    old_decode = recipe / DECODE / "dev/wav/wav.scp"
    before = old_decode.read_bytes()
    # Stage 8 in padded batches of 3 (sorted by length: the 4 utterances make a batch of 3 and one of 1).
    run(recipe, "--stage", "8", "--stop_stage", "8", "--test_sets", "eval1", "--inference_nj", "1",
        "--inference_args", "--noise_scale 0.0 --batch_size 3")
    new_decode = recipe / "exp/tts_glow_wavegan_tiny/decode_noise_scale0.0_batch_size3_train.total_count.ave"
    assert (new_decode / "eval1/.done").exists() and len(table(new_decode / "eval1/wav/wav.scp")) == 4
    assert len(table(new_decode / "eval1/durations")) == 4 and len(list((new_decode / "eval1/att_ws").glob("*.png"))) == 4
    assert "in a batch of 3" in (new_decode / "eval1/log/tts_inference.1.log").read_text()
    assert old_decode.read_bytes() == before
    proc = run(recipe, "--stage", "7", "--stop_stage", "7", "--train_vae", "false", "--train_args", "--max_epoch 1")
    assert (recipe / "exp/tts_glow_wavegan_tiny_max_epoch1/.done").exists()
    assert "exp/tts_glow_wavegan_tiny has finished training" not in proc.stderr


def test_teacher_forced_decoding_from_the_recipe(lj_recipe):
    """--inference_args "--use_teacher_forcing true": stage 8 passes the reference speech (MAS durations)."""
    recipe, _ = lj_recipe
    run(recipe, "--stage", "8", "--stop_stage", "8", "--test_sets", "eval1", "--inference_args", "--use_teacher_forcing true")
    out = recipe / "exp/tts_glow_wavegan_tiny/decode_use_teacher_forcingtrue_train.total_count.ave/eval1"
    lengths = dict(table(recipe / "dump/raw/eval1/utt2num_samples"))
    durations = dict(table(out / "durations"))
    for utt, path in table(out / "wav/wav.scp"):
        frames = sum(int(d) for d in durations[utt].split())
        assert sf.info(path).frames == frames * 256
        assert abs(frames - (int(lengths[utt]) // 256 + 1)) <= 1  # the reference's frames (even for the flow)


def test_a_second_training_run_on_the_same_experiment_stops_at_once(lj_recipe):
    """Stage 7 while another run holds the experiment (a live process's lock): it stops before touching it."""
    import os
    import socket

    recipe, _ = lj_recipe
    exp = recipe / "exp/tts_glow_wavegan_tiny"
    done, aside, lock = exp / ".done", exp / ".done.aside", exp / ".lock"
    holder = f"{os.getpid()} {socket.gethostname()}\n"  # this test's process: alive
    before = {p.name: p.stat().st_mtime_ns for p in exp.glob("*.pth")}
    done.rename(aside)
    lock.write_text(holder)
    try:
        proc = run(recipe, "--stage", "7", "--stop_stage", "7", "--train_vae", "false", check=False)
        assert proc.returncode != 0
        assert f"{exp.relative_to(recipe)} is in use by process {os.getpid()} on {socket.gethostname()}" in proc.stderr
        assert lock.read_text() == holder
        assert {p.name: p.stat().st_mtime_ns for p in exp.glob("*.pth")} == before
    finally:
        lock.unlink(missing_ok=True)
        aside.rename(done)


# --- A new voice from the trained mini model (tts.sh --pretrained_model, docs/adaptation.md) ---

PACKED = "exp/tts_glow_wavegan_tiny/tts_glow_wavegan_tiny_train.total_count.ave.zip"
NEW_VOICE = {"LJSPEECH": str(CORPORA / "mini_new_voice")}
ADAPTED = "exp/tts_glow_wavegan_tiny_adapt"


def _adapt(recipe, *args, check=True, corpus=None):
    env = {"LJSPEECH": str(corpus)} if corpus else NEW_VOICE
    return run(recipe, "--mini", "true", "--local_data_opts", "--num_heldout 3", "--nj", "1", "--inference_nj", "1",
               "--test_sets", "eval1",
               *args, check=check, env_extra=env)


def _state(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def adapted_recipe(lj_recipe, tmp_path_factory):
    """The mini model's packed zip adapted to mini_new_voice, prior only, stages 1-10 (ONNX export too)."""
    recipe, _ = lj_recipe
    new = recipe_copy(tmp_path_factory.mktemp("adapt"), "ljspeech")
    proc = _adapt(new, "--pretrained_model", str(recipe / PACKED), "--stop_stage", "10", "--export_onnx", "true")
    return recipe, new, proc


def test_adaptation_reuses_the_token_list_and_the_wavegan_and_starts_from_the_prior(adapted_recipe):
    import yaml

    old, new, proc = adapted_recipe
    pretrained = new / "exp/pretrained/tts_glow_wavegan_tiny_train.total_count.ave"
    assert "its front end (token_type=char cleaner=tacotron g2p=none" in proc.stderr
    old_tokens = (old / "dump/token_list/char_tacotron/tokens.txt").read_text()
    assert (pretrained / "tokens.txt").read_text() == old_tokens
    assert not (new / "dump/token_list").exists()  # no token list built from the new text
    assert yaml.safe_load((new / ADAPTED / "config.yaml").read_text())["token_list"] == old_tokens.split()
    assert not (new / "exp/tts_wavegan_vae_tiny").exists()  # stage 7a skipped
    assert (new / "dump/latents/pretrained_tts_glow_wavegan_tiny_train.total_count.ave/tr_no_dev/stats.scp").exists()
    before, after = _state(old / "exp/tts_glow_wavegan_tiny/train.total_count.ave.pth"), _state(new / ADAPTED / "train.total_count.ave.pth")
    wavegan = [k for k in before if k.startswith("tts.generator.wavegan.")]
    assert wavegan and all(torch_equal(before[k], after[k]) for k in wavegan)  # the WaveGAN bit-identical
    # The prior starts from the pretrained one: a few fine-tuning steps move it by a small fraction
    # (from a random start it would differ by about its own size).
    prior = [k for k in before if k.startswith("tts.generator.prior.") and before[k].is_floating_point()
             and before[k].numel() > 100]
    change = max(float((after[k] - before[k]).norm() / before[k].norm()) for k in prior)
    assert 0 < change < 0.1, change
    config = yaml.safe_load((new / ADAPTED / "config.yaml").read_text())
    assert config["optim_conf"]["lr"] == 2.0e-4 and config["max_epoch"] == 2  # conf/finetune/*.yaml on top
    assert config["tts_conf"]["prior_params"] == yaml.safe_load(
        (old / "exp/tts_glow_wavegan_tiny/config.yaml").read_text())["tts_conf"]["prior_params"]


def torch_equal(a, b):
    import torch

    return torch.equal(a, b)


def test_adaptation_report_before_and_after(adapted_recipe):
    import json

    _, new, _ = adapted_recipe
    report = json.loads((new / ADAPTED / "RESULTS_adapt.json").read_text())
    rows = report["sets"]["eval1"]
    assert list(rows) == ["recordings", "copy synthesis, pretrained WaveGAN", "TTS, pretrained model (before)",
                          "TTS, adapted model (after)"]
    for name, summary in rows.items():
        assert summary["num_utts"] == 3, name
        assert {"wer", "cer", "spk_similarity", "mcd"} <= set(summary), name
    # the recordings against themselves: no distance, the ASR's floor as both rates
    assert rows["recordings"]["mcd"] == 0 and rows["recordings"]["wer"] == rows["recordings"]["wer_recordings"]
    text = (new / ADAPTED / "RESULTS_adapt.md").read_text()
    assert "| TTS, adapted model (after) |" in text and "speaker sim." in text


def test_adapted_packed_model_synthesises_in_a_fresh_process_and_exports(adapted_recipe, python_run, tmp_path):
    _, new, _ = adapted_recipe
    packed = new / ADAPTED / "tts_glow_wavegan_tiny_adapt_train.total_count.ave.zip"
    moved = tmp_path / "adapted.zip"
    shutil.copy(packed, moved)
    with zipfile.ZipFile(moved) as z:
        names = z.namelist()
    assert any(n.endswith("RESULTS_adapt.md") for n in names) and any(n.endswith("decoder.onnx") for n in names)
    out = tmp_path / "hello.wav"
    python_run(["-m", "espnet2_glow_wavegan.bin.synthesize", "--model_tag", str(moved), "--text",
                "The kettle sang on the stove.", "--output", str(out)], cwd=tmp_path)
    wav, fs = sf.read(out)
    assert fs == 22050 and len(wav) > 0 and np.isfinite(wav).all()


def test_the_scratch_baseline_trains_the_recipe_configs_for_the_adaptations_time(adapted_recipe, tmp_path):
    """--scratch_baseline true (stage 7d): the recipe's own configs, from scratch (no pretrained weights), on the
    new voice's data, for the wall time recorded for the adaptation; RESULTS_adapt.md scores it beside."""
    import json

    import yaml

    _, adapted, _ = adapted_recipe
    root = tmp_path / "copy"
    shutil.copytree(adapted.parents[2], root, symlinks=True)
    new = root / "egs2/ljspeech/tts1"
    (new / ADAPTED / "wall_seconds").write_text("300\n")  # as if the prior's fine-tuning had taken 5 minutes
    latents = new / "dump/latents/pretrained_tts_glow_wavegan_tiny_train.total_count.ave"
    extraction = sum(int((latents / d / "wall_seconds").read_text()) for d in ("tr_no_dev", "dev"))
    proc = _adapt(new, "--pretrained_model", str(adapted_recipe[0] / PACKED), "--stage", "7", "--stop_stage", "9",
                  "--scratch_baseline", "true")
    assert "Stage 7d" in proc.stderr
    assert int((new / ADAPTED / "adaptation_seconds").read_text()) == 300 + extraction
    scratch, scratch_wavegan = new / f"{ADAPTED}_scratch", new / f"{ADAPTED}_scratch_wavegan"
    config = yaml.safe_load((scratch / "config.yaml").read_text())
    # the WaveGAN it trained itself, and no pretrained prior
    assert config["init_param"] == [f"{scratch_wavegan.relative_to(new)}/train.total_count.ave.pth"
                                    ":tts.generator:tts.generator.wavegan"]
    assert config["optim_conf"]["lr"] == 2.0e-3  # the recipe's config, not conf/finetune's
    assert config["token_list"] == yaml.safe_load((new / ADAPTED / "config.yaml").read_text())["token_list"]
    for exp in (scratch, scratch_wavegan):  # the tiny configs end by themselves within the budget
        record = json.loads((exp / "timed_training.json").read_text())
        assert not record["stopped_at_deadline"] and record["seconds"] < record["budget_seconds"], record
    assert int((scratch / "scratch_seconds").read_text()) <= 300 + extraction
    report = json.loads((new / ADAPTED / "RESULTS_adapt.json").read_text())
    assert report["adaptation_seconds"] == 300 + extraction
    row = report["sets"]["eval1"]["TTS, from scratch (same data and time)"]
    assert row["num_utts"] == 3 and row["wer"] is not None
    assert "| TTS, from scratch (same data and time) |" in (new / ADAPTED / "RESULTS_adapt.md").read_text()


def test_adapting_the_decoder_freezes_the_encoder(lj_recipe, tmp_path):
    """--adapt_decoder true from the experiment dir: the decoder is fine-tuned, the encoder stays bit-identical,
    and the trained discriminator is found through the prior's init_param and kept."""
    recipe, _ = lj_recipe
    new = recipe_copy(tmp_path, "ljspeech")
    proc = _adapt(new, "--pretrained_model", str(recipe / "exp/tts_glow_wavegan_tiny"), "--adapt_decoder", "true",
                  "--stop_stage", "7", "--train_tts", "false")
    pretrained = new / "exp/pretrained/tts_glow_wavegan_tiny"
    source = (pretrained / "source.json").read_text()
    assert "discriminator from" in source, source
    before = _state(recipe / "exp/tts_wavegan_vae_tiny/train.total_count.ave.pth")
    after = _state(new / "exp/tts_glow_wavegan_tiny_adapt_decoder/train.total_count.ave.pth")
    encoder = [k for k in before if k.startswith("tts.generator.encoder.")]
    decoder = [k for k in before if k.startswith("tts.generator.decoder.") and before[k].is_floating_point()]
    assert encoder and all(torch_equal(before[k], after[k]) for k in encoder)
    assert any(not torch_equal(before[k], after[k]) for k in decoder)
    assert "Stage 7a" in proc.stderr
    import yaml

    config = yaml.safe_load((new / "exp/tts_glow_wavegan_tiny_adapt_decoder/config.yaml").read_text())
    assert config["tts_conf"]["adversarial_start_steps"] == 0  # conf/finetune's, merged into the pretrained config


def test_symbols_outside_the_pretrained_token_list_are_refused_by_name(lj_recipe, tmp_path):
    recipe, _ = lj_recipe
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPORA / "mini_new_voice", corpus)
    metadata = corpus / "LJSpeech-1.1/metadata.csv"
    shutil.copy(corpus / "LJSpeech-1.1/wavs/LJ050-0001.wav", corpus / "LJSpeech-1.1/wavs/LJ050-0031.wav")
    metadata.write_text(metadata.read_text() + "LJ050-0031|Zoe's jazz band.|Zoe's jazz band.\n")
    new = recipe_copy(tmp_path / "r", "ljspeech")
    proc = _adapt(new, "--pretrained_model", str(recipe / PACKED), "--stop_stage", "5", check=False, corpus=corpus)
    assert proc.returncode != 0
    assert "LJ050-0031: 'J' 'Z'" in proc.stderr and "outside" in proc.stderr, proc.stderr[-2000:]
