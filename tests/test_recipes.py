"""The recipes run end to end on the bundled mini corpora (stages 1-8), in a scratch copy."""

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from conftest import REPO

# Stock ESPnet entry points in subprocesses: minutes (deselect with -m 'not slow').
pytestmark = pytest.mark.slow

DECODE = "exp/tts_glow_wavegan_tiny/decode_train.total_count.ave"


def recipe_copy(root: Path, name: str) -> Path:
    """egs2/<name>/tts1 laid out as in the project, without any earlier outputs."""
    (root / "egs2").mkdir(parents=True, exist_ok=True)
    os.symlink(REPO / "egs2" / "TEMPLATE", root / "egs2" / "TEMPLATE")
    os.symlink(REPO / "corpora", root / "corpora")
    os.symlink((REPO / ".venv").resolve(), root / ".venv")
    shutil.copytree(
        REPO / "egs2" / name / "tts1", root / "egs2" / name / "tts1", symlinks=True,
        ignore=shutil.ignore_patterns("data", "dump", "exp"),
    )
    return root / "egs2" / name / "tts1"


def run(recipe: Path, *args, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"run.sh {args} failed ({proc.returncode}):\n{proc.stderr[-5000:]}")
    return proc


def table(path: Path):
    return [line.split(maxsplit=1) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_consistent_data_dir(d: Path):
    keys = None
    for name in ("wav.scp", "text", "utt2spk"):
        ids = [row[0] for row in table(d / name)]
        assert ids == sorted(ids), f"{d / name} is not sorted"
        assert keys is None or ids == keys, f"{d / name} has other utterances than wav.scp"
        keys = ids
    spk2utt = {row[0]: row[1].split() for row in table(d / "spk2utt")}
    assert sorted(u for utts in spk2utt.values() for u in utts) == keys
    return keys


HF_REPO = "test-user/glow-wavegan-ljspeech-mini"


@pytest.fixture(scope="module")
def lj_recipe(tmp_path_factory):
    """Stages 1-11 (upload as a dry run), then the VITS baseline and the comparison table."""
    recipe = recipe_copy(tmp_path_factory.mktemp("lj"), "ljspeech")
    proc = run(recipe, "--stop_stage", "11", "--hf_repo", HF_REPO, "--hf_dry_run", "true", "--vits_baseline", "true")
    return recipe, proc


@pytest.fixture(scope="module")
def aishell_recipe(tmp_path_factory):
    recipe = recipe_copy(tmp_path_factory.mktemp("aishell"), "aishell3")
    proc = run(recipe)
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
    proc = run(recipe)
    assert "data/ is complete" in proc.stderr and "delete it to decode again" in proc.stderr
    assert f"Stage 7b: {LATENTS}/tr_no_dev is complete" in proc.stderr
    assert [(p.stat().st_mtime_ns, p.read_bytes()) for p in watched] == before
    bad = run(recipe, "--stage", "8", "--stop_stage", "8", "--inference_model", "missing.pth", check=False)
    assert bad.returncode != 0
    assert "missing input exp/tts_glow_wavegan_tiny/missing.pth" in bad.stderr


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


def test_half_written_data_dir_is_not_overwritten(tmp_path):
    recipe = recipe_copy(tmp_path, "ljspeech")
    (recipe / "data").mkdir()
    (recipe / "data" / "mine.txt").write_text("user data")
    proc = run(recipe, "--stop_stage", "1", check=False)
    assert proc.returncode != 0 and "data/ exists but is incomplete" in proc.stderr
    assert (recipe / "data" / "mine.txt").read_text() == "user data"


def test_aishell3_speakers_rates_and_decoding(aishell_recipe):
    recipe, _ = aishell_recipe
    train_spk = {s for _, s in table(recipe / "data/train_no_dev/utt2spk")}
    test_spk = {s for _, s in table(recipe / "data/test/utt2spk")}
    assert len(train_spk) == 4 and test_spk == {"SSB0015"}
    for dump in ("dump/raw/org/train_no_dev", "dump/raw/test"):
        assert_consistent_data_dir(recipe / dump)
        assert sf.info(table(recipe / dump / "wav.scp")[0][1]).samplerate == 24000  # from 44.1 kHz
    spk2sid = dict(table(recipe / "dump/raw/spk2sid"))
    assert spk2sid["<unk>"] == "0" and sorted(spk2sid.values(), key=int) == ["0", "1", "2", "3", "4"]
    assert {sid for _, sid in table(recipe / "dump/raw/test/utt2sid")} == {"0"}  # unseen speaker
    train_sids = dict(table(recipe / "dump/raw/train_no_dev/utt2sid"))
    assert all(train_sids[u] == spk2sid[s] for u, s in table(recipe / "dump/raw/train_no_dev/utt2spk"))
    for split in ("train_no_dev", "dev", "test"):
        embeddings = dict(kaldiio.load_scp(str(recipe / "dump/spembs" / split / "spembs.scp")))
        assert sorted(embeddings) == [u for u, _ in table(recipe / "dump/raw" / split / "wav.scp")]
        assert all(v.shape == (32,) and np.isfinite(v).all() for v in embeddings.values())
    tokens = (recipe / "dump/token_list/phn_none_pypinyin_g2p_phone/tokens.txt").read_text().split()
    assert tokens[0] == "<blank>" and any(t[-1].isdigit() for t in tokens)  # tonal pinyin phones
    scp = table(recipe / DECODE / "test/wav/wav.scp")
    assert [u for u, _ in scp] == ["SSB00150001", "SSB00150002", "SSB00150003"]
    assert all(sf.info(p).samplerate == 24000 for _, p in scp)


def test_aishell3_model_speaks_for_an_unseen_speaker_with_text2speech(aishell_recipe, python_run):
    recipe, _ = aishell_recipe
    exp = recipe / "exp/tts_glow_wavegan_tiny"
    script = textwrap.dedent(
        f"""
        import json, kaldiio, torch
        from espnet2.bin.tts_inference import Text2Speech
        t2s = Text2Speech(train_config="{exp}/config.yaml", model_file="{exp}/train.total_count.ave.pth")
        spembs = dict(kaldiio.load_scp("{recipe}/dump/spembs/test/spembs.scp"))
        other = dict(kaldiio.load_scp("{recipe}/dump/spembs/train_no_dev/spembs.scp"))
        conf = {{"noise_scale": 0.0}}
        a = t2s("今天天气很好", sids=torch.tensor([0]), spembs=torch.from_numpy(spembs["SSB00150001"]), decode_conf=conf)
        b = t2s("今天天气很好", sids=torch.tensor([0]), spembs=torch.from_numpy(other["SSB00110001"]),
                decode_conf=dict(conf, length_scale=1.0), durations=a["duration"])
        print(json.dumps({{"n": a["wav"].numel(), "dur": int(a["duration"].sum()), "fs": t2s.fs,
                          "spks": t2s.tts.spks, "spk_embed_dim": t2s.tts.spk_embed_dim,
                          "differs": not torch.allclose(a["wav"], b["wav"]),
                          "finite": bool(torch.isfinite(a["wav"]).all())}}))
        """
    )
    import json

    out = json.loads(python_run(["-c", script]).stdout.strip().splitlines()[-1])
    assert out["fs"] == 24000 and out["spks"] == 5 and out["spk_embed_dim"] == 32 and out["finite"]
    assert out["n"] == out["dur"] * 300
    assert out["differs"], "another speaker embedding must change the voice"


def test_ljspeech_scores_and_comparison_with_vits(lj_recipe):
    recipe, _ = lj_recipe
    import json

    for system in ("glow_wavegan_tiny", "vits_tiny"):
        out = recipe / "exp" / f"tts_{system}" / "decode_train.total_count.ave" / "eval1" / "scores"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["num_utts"] == 4
        for metric in ("mcd", "log_f0_rmse", "vuv_error", "duration_ratio", "rtf"):
            assert np.isfinite(summary[metric]) and summary[metric] >= 0, (system, metric)
        assert len(table(out / "utt2mcd")) == 4
        assert "| eval1 |" in (recipe / "exp" / f"tts_{system}" / "RESULTS.md").read_text()
    rows = json.loads((recipe / "RESULTS_compare.json").read_text())
    assert [r["system"] for r in rows] == ["glow_wavegan", "vits"]
    assert all(r["params_synthesis"] > 0 and np.isfinite(r["mcd"]) and np.isfinite(r["rtf"]) for r in rows)
    table_md = (recipe / "RESULTS_compare.md").read_text()
    assert "| glow_wavegan | tts_glow_wavegan_tiny | eval1 |" in table_md and "| vits | tts_vits_tiny | eval1 |" in table_md


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
        print(json.dumps({{"keys": sorted(files), "n": out["wav"].numel(), "fs": t2s.fs,
                          "type": type(t2s.tts).__name__, "speech_input": t2s.tts.speech_input}}))
        """
    )
    import json

    out = json.loads(python_run(["-c", script], cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert out["type"] == "GlowWaveGAN" and out["fs"] == 22050 and out["n"] > 0
    assert {"train_config", "model_file"} <= set(out["keys"])
    # A prior trained on stored latents synthesises from the zip alone.
    assert out["speech_input"] == "posterior_stats"


def test_hugging_face_dry_run_folder(lj_recipe):
    recipe, proc = lj_recipe
    folder = recipe / "exp/tts_glow_wavegan_tiny" / ("hf_" + HF_REPO.replace("/", "_"))
    assert "dry run" in proc.stdout + proc.stderr
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "text-to-speech" in card and "- espnet" in card
    assert "pip install espnet2-glow-wavegan" in card and "Text2Speech(" in card
    assert "| glow_wavegan |" in card and "tts: glow_wavegan" in card
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


def test_ljspeech_recipe_with_the_istft_decoder_packs_a_model_text2speech_runs(tmp_path, python_run):
    recipe = recipe_copy(tmp_path / "istft", "ljspeech")
    run(recipe, "--decoder", "istft", "--stop_stage", "10")
    exp = recipe / "exp/tts_glow_wavegan_istft_tiny"
    packed = exp / "tts_glow_wavegan_istft_tiny_train.total_count.ave.zip"
    assert (recipe / "exp/tts_wavegan_vae_istft_tiny/.done").exists() and packed.exists()
    assert len(table(exp / "decode_train.total_count.ave/eval1/wav/wav.scp")) == 4
    script = textwrap.dedent(
        f"""
        import json
        from espnet2.bin.tts_inference import Text2Speech
        from espnet2.main_funcs.pack_funcs import unpack
        t2s = Text2Speech.from_pretrained(**unpack("{packed}", "{tmp_path / 'unpacked'}"))
        out = t2s("Hello from the inverse STFT.")
        print(json.dumps({{"decoder": t2s.tts.generator.wavegan.decoder_type, "n": out["wav"].numel(),
                          "frames": int(out["duration"].sum())}}))
        """
    )
    import json

    out = json.loads(python_run(["-c", script]).stdout.strip().splitlines()[-1])
    assert out["decoder"] == "istft" and out["n"] == out["frames"] * 256 > 0
