"""glow_wavegan end to end with ESPnet's stock entry points on the mini LJSpeech corpus.

wavegan_vae (trained by the session fixture) -> glow_wavegan prior initialised from it
with --init_param -> Text2Speech in a fresh process with no plugin import.
"""

import json
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import LJ_CONF, run_python, wavegan_settings

# Stock ESPnet entry points in subprocesses: minutes (deselect with -m 'not slow').
pytestmark = pytest.mark.slow

INIT_PARAM = "{model}:tts.generator:tts.generator.wavegan"


def extract_latents(root, wavegan_exp, name):
    """The recipe's stage 7b for one data dir: the WaveGAN posterior of every utterance, stored once."""
    out = root / "latents" / name
    model = ["--train_config", str(wavegan_exp / "config.yaml"), "--model_file", str(wavegan_exp / "2epoch.pth")]
    wav_scp = str(root / "data" / name / "wav.scp")
    run_python(["-m", "espnet2_glow_wavegan.recipe.extract_latents", "extract", *model, "--wav_scp", wav_scp,
                "--out", str(out / "split" / "stats.1"), "--batch_seconds", "5"], cwd=root)
    run_python(["-m", "espnet2_glow_wavegan.recipe.extract_latents", "finalize", *model, "--wav_scp", wav_scp,
                "--out_dir", str(out)], cwd=root)
    return out


@pytest.fixture(scope="module")
def lj_glow(lj_wavegan):
    """The tiny prior trained by stock gan_tts_train on stored latents (the recipes' default)."""
    root, wavegan_exp, _, _ = lj_wavegan
    latents = {name: extract_latents(root, wavegan_exp, name) for name in ("train", "valid")}
    data = []
    for split, name in (("train", "train"), ("valid", "valid")):
        data += [f"--{split}_data_path_and_name_and_type", f"{root}/data/{name}/text,text,text",
                 f"--{split}_data_path_and_name_and_type", f"{latents[name]}/stats.scp,speech,kaldi_ark",
                 f"--{split}_shape_file", str(root / "stats" / split / "text_shape"),
                 f"--{split}_shape_file", str(latents[name] / "speech_shape")]
    exp = root / "exp_glow"
    run_python(
        ["-m", "espnet2.bin.gan_tts_train", "--config", str(LJ_CONF / "train_glow_wavegan_tiny.yaml"),
         "--use_preprocessor", "true", "--token_type", "char", "--token_list", str(root / "tokens.txt"),
         *data, "--output_dir", str(exp), "--init_param", INIT_PARAM.format(model=wavegan_exp / "2epoch.pth"),
         *wavegan_settings(wavegan_exp)],
        cwd=root,
    )
    return root, wavegan_exp, exp


def test_stored_latents_are_the_wavegan_posterior(lj_glow):
    root, wavegan_exp, _ = lj_glow
    import kaldiio
    import yaml

    from espnet2_glow_wavegan.wavegan.wavegan_vae import WaveGANVAE

    latents = root / "latents" / "train"
    stored = dict(kaldiio.load_scp(str(latents / "stats.scp")))
    wavs = dict(line.split() for line in (root / "data/train/wav.scp").read_text().splitlines())
    assert sorted(stored) == sorted(wavs)
    shapes = dict(line.split() for line in (latents / "speech_shape").read_text().splitlines())
    manifest = json.loads((latents / "manifest.json").read_text())
    assert manifest["utterances"] == len(wavs) and manifest["model_file"].endswith("2epoch.pth")
    conf = yaml.safe_load((wavegan_exp / "config.yaml").read_text())["tts_conf"]
    vae = WaveGANVAE(idim=10, odim=1, **conf).eval()
    state = torch.load(wavegan_exp / "2epoch.pth", map_location="cpu")
    vae.load_state_dict({k[len("tts."):]: v for k, v in state.items()})
    for utt in sorted(wavs)[:2]:
        wav, _ = sf.read(wavs[utt], dtype="float32")
        with torch.no_grad():
            mean, log_std, _ = vae.generator.encoder(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
        expected = torch.cat([mean, log_std], dim=1)[0].T.numpy()
        assert stored[utt].shape == (len(wav) // 256 + 1, 2 * vae.generator.latent_dim)
        assert shapes[utt] == "{},{}".format(*stored[utt].shape)
        # Float32 rounding (weight norm folded for extraction) scales with the posterior, whose mean varies by about 1.
        np.testing.assert_allclose(stored[utt], expected, atol=2e-5 * max(1.0, float(np.abs(expected).max())), rtol=0)


def test_prior_training_keeps_the_wavegan_bit_identical(lj_glow):
    _, wavegan_exp, exp = lj_glow
    wavegan = torch.load(wavegan_exp / "2epoch.pth", map_location="cpu")
    glow = torch.load(exp / "2epoch.pth", map_location="cpu")
    prefix = "tts.generator.wavegan."
    copied = {k[len(prefix):]: v for k, v in glow.items() if k.startswith(prefix)}
    expected = {k[len("tts.generator."):]: v for k, v in wavegan.items() if k.startswith("tts.generator.")}
    assert copied.keys() == expected.keys() and len(copied) > 10
    assert all(torch.equal(copied[k], expected[k]) for k in expected)
    # ... while the prior did train.
    first = torch.load(exp / "1epoch.pth", map_location="cpu")
    assert any(not torch.equal(first[k], glow[k]) for k in glow if k.startswith("tts.generator.prior."))


def test_text2speech_synthesises_with_stock_espnet(lj_glow, python_run):
    _, _, exp = lj_glow
    script = textwrap.dedent(
        f"""
        import json, torch
        from espnet2.bin.tts_inference import Text2Speech
        t2s = Text2Speech(train_config={str(exp / 'config.yaml')!r}, model_file={str(exp / '2epoch.pth')!r})
        hop = t2s.tts.generator.upsample_factor
        text = "the old clock struck eleven"
        out = t2s(text)
        a = t2s(text, decode_conf={{"noise_scale": 0.0}})
        b = t2s(text, decode_conf={{"noise_scale": 0.0}})
        slow = t2s(text, decode_conf={{"noise_scale": 0.0, "length_scale": 2.0}})
        print(json.dumps({{
            "type": type(t2s.tts).__name__, "fs": t2s.fs, "hop": hop,
            "n_wav": out["wav"].numel(), "dur_sum": int(out["duration"].sum()),
            "finite": bool(torch.isfinite(out["wav"]).all()),
            "deterministic": bool(torch.equal(a["wav"], b["wav"])),
            "n_slow": slow["wav"].numel(), "n_a": a["wav"].numel(),
            "att_w": list(out["att_w"].shape), "n_tokens": int(len(t2s.preprocess_fn("<d>", {{"text": text}})["text"])),
        }}))
        """
    )
    out = json.loads(python_run(["-c", script]).stdout.strip().splitlines()[-1])
    assert out["type"] == "GlowWaveGAN" and out["fs"] == 22050 and out["finite"]
    assert out["n_wav"] == out["dur_sum"] * out["hop"]
    assert out["att_w"] == [out["dur_sum"], out["n_tokens"]]
    assert out["deterministic"]
    # ceil() rounding on short durations keeps this below an exact 2x.
    assert 1.5 <= out["n_slow"] / out["n_a"] <= 2.5, out


def test_tts_inference_cli_forwards_noise_and_speed(lj_glow, tmp_path):
    root, _, exp = lj_glow
    lengths = {}
    for alpha in ("1.0", "2.0"):
        outdir = tmp_path / f"alpha{alpha}"
        run_python(
            ["-m", "espnet2_glow_wavegan.bin.tts_inference", "--ngpu", "0",
             "--data_path_and_name_and_type", f"{root}/data/valid/text,text,text",
             "--train_config", str(exp / "config.yaml"), "--model_file", str(exp / "2epoch.pth"),
             "--output_dir", str(outdir), "--noise_scale", "0.0", "--speed_control_alpha", alpha],
            cwd=root,
        )
        wavs = sorted((outdir / "wav").glob("*.wav"))
        assert [w.stem for w in wavs] == ["LJ001-0009", "LJ001-0010"]
        assert (outdir / "att_ws" / "LJ001-0009.png").exists()  # hard alignment plots
        lengths[alpha] = sum(sf.info(w).frames for w in wavs)
    assert 1.5 <= lengths["2.0"] / lengths["1.0"] <= 2.5, lengths


def test_tts_inference_cli_optimizes_and_batches_and_the_stream_cli_speaks_the_same(lj_glow, tmp_path):
    """--optimize_for_inference float32 and --batch_size 2 write batch-1 wavs; the streaming CLI's PCM is the same."""
    root, _, exp = lj_glow
    wavs, durations = {}, {}
    model = ["--train_config", str(exp / "config.yaml"), "--model_file", str(exp / "2epoch.pth")]
    for mode, options in (("none", ["--optimize_for_inference", "none"]), ("float32", ["--optimize_for_inference", "float32"]),
                          ("batch", ["--batch_size", "2"])):
        outdir = tmp_path / mode
        proc = run_python(
            ["-m", "espnet2_glow_wavegan.bin.tts_inference", "--ngpu", "0", *options,
             "--data_path_and_name_and_type", f"{root}/data/valid/text,text,text", *model,
             "--output_dir", str(outdir), "--noise_scale", "0.0"],
            cwd=root,
        )
        wavs[mode] = {w.stem: sf.read(w)[0] for w in sorted((outdir / "wav").glob("*.wav"))}
        assert list(wavs[mode]) == ["LJ001-0009", "LJ001-0010"]
        durations[mode] = (outdir / "durations" / "durations").read_text()
        assert len(list((outdir / "att_ws").glob("*.png"))) == 2
        assert ("in a batch of 2" in proc.stderr) == (mode == "batch")
    assert durations["batch"] == durations["none"]
    text = dict(line.split(" ", 1) for line in (root / "data/valid/text").read_text().splitlines())["LJ001-0009"]
    stream = run_python(["-m", "espnet2_glow_wavegan.bin.synthesize", *model, "--text", text, "--output", "-",
                         "--noise_scale", "0.0", "--optimize_for_inference", "none", "--chunk_frames", "5",
                         "--first_chunk_frames", "3"], cwd=root, text=False)
    assert b"first audio after" in stream.stderr
    streamed = np.frombuffer(stream.stdout, dtype="<i2") / 32768
    whole = wavs["none"]["LJ001-0009"]
    assert streamed.shape == whole.shape and np.abs(streamed - whole).max() <= 1 / 32768
    for utt, plain in wavs["none"].items():
        # ESPnet writes 16-bit PCM: equal to within one quantisation step.
        assert np.abs(wavs["float32"][utt] - plain).max() <= 2 / 32768, utt
        assert np.abs(wavs["batch"][utt] - plain).max() <= 2 / 32768, utt


def test_the_stream_cli_refuses_bad_input_by_name(lj_glow, tmp_path):
    root, _, exp = lj_glow
    model = ["--train_config", str(exp / "config.yaml"), "--model_file", str(exp / "2epoch.pth")]
    proc = run_python(["-m", "espnet2_glow_wavegan.bin.synthesize", *model, "--text", "Fine. ... ?!", "--output",
                       str(tmp_path / "out.wav"), "--length_scale", "-1"], cwd=root, check=False)
    assert proc.returncode != 0
    assert "ERROR: sentence 'Fine. ... ?!': length_scale must be a finite number > 0" in proc.stderr, proc.stderr[-2000:]


def test_a_failed_stream_run_leaves_the_output_file_and_a_missing_folder_is_named_first(lj_glow, tmp_path):
    root, _, exp = lj_glow
    model = ["--train_config", str(exp / "config.yaml"), "--model_file", str(exp / "2epoch.pth")]
    keep = tmp_path / "keep.wav"
    sf.write(keep, np.full(2205, 0.25), 22050)
    before = keep.read_bytes()
    proc = run_python(["-m", "espnet2_glow_wavegan.bin.synthesize", *model, "--text", "!!!", "--output", str(keep)],
                      cwd=root, check=False)
    assert proc.returncode != 0 and "ERROR: sentence '!!!'" in proc.stderr, proc.stderr[-2000:]
    assert keep.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]
    missing = tmp_path / "no/such/dir/x.wav"
    proc = run_python(["-m", "espnet2_glow_wavegan.bin.synthesize", "--train_config", "not-loaded.yaml",
                       "--model_file", "not-loaded.pth", "--text", "Fine.", "--output", str(missing)], cwd=root, check=False)
    assert proc.returncode != 0 and f"the folder {missing.parent} does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr  # stopped before the model loads


def test_the_stream_cli_speaks_a_packed_zip_offline(lj_glow, tmp_path):
    """--model_tag model.zip: ESPnet's own unpacking in a fresh process (no espnet_model_zoo, no network)."""
    root, _, exp = lj_glow
    packed = tmp_path / "model.zip"
    run_python(["-m", "espnet2.bin.pack", "tts", "--train_config", str(exp / "config.yaml"), "--model_file",
                str(exp / "2epoch.pth"), "--outpath", str(packed)], cwd=root)
    out = tmp_path / "zip.wav"
    proc = run_python(["-m", "espnet2_glow_wavegan.bin.synthesize", "--model_tag", str(packed), "--text", "Fine.",
                       "--output", str(out), "--noise_scale", "0.0"], cwd=root)
    assert "first audio after" in proc.stderr and sf.info(out).frames > 0
    direct = tmp_path / "direct.wav"
    run_python(["-m", "espnet2_glow_wavegan.bin.synthesize", "--train_config", str(exp / "config.yaml"), "--model_file",
                str(exp / "2epoch.pth"), "--text", "Fine.", "--output", str(direct), "--noise_scale", "0.0"], cwd=root)
    assert np.array_equal(sf.read(out)[0], sf.read(direct)[0])


def test_stock_text2speech_refuses_bad_synthesis_input(lj_glow, python_run):
    _, _, exp = lj_glow
    script = textwrap.dedent(
        f"""
        import json, torch
        from espnet2.bin.tts_inference import Text2Speech
        t2s = Text2Speech(train_config={str(exp / 'config.yaml')!r}, model_file={str(exp / '2epoch.pth')!r})
        errors = {{}}
        for name, call in [
            ("length_zero", lambda: t2s("the old clock", decode_conf={{"length_scale": 0.0}})),
            ("noise_negative", lambda: t2s("the old clock", decode_conf={{"noise_scale": -1.0}})),
            ("too_long", lambda: t2s("the old clock", decode_conf={{"length_scale": 1e4}})),
            ("whitespace", lambda: t2s("   ")),
            ("sids", lambda: t2s("the old clock", sids=torch.tensor([999]))),
            ("spembs", lambda: t2s("the old clock", spembs=torch.full((8,), float("nan")))),
        ]:
            try:
                call()
                errors[name] = None
            except ValueError as e:
                errors[name] = str(e)
        print(json.dumps({{"errors": errors, "silent_ids": t2s.tts.silent_token_ids.numel()}}))
        """
    )
    out = json.loads(python_run(["-c", script]).stdout.strip().splitlines()[-1])
    errors = out["errors"]
    assert "length_scale must be a finite number > 0" in errors["length_zero"]
    assert "noise_scale must be a finite number >= 0" in errors["noise_negative"]
    assert "over max_output_seconds" in errors["too_long"]
    assert "nothing to speak" in errors["whitespace"]
    assert "no speaker table" in errors["sids"] and "takes no speaker embedding" in errors["spembs"]
    assert out["silent_ids"] >= 4  # ESPnet's build handed the model its token list


@pytest.mark.parametrize("flow_blocks", [1, 3])
def test_stock_text2speech_refuses_weights_of_another_config(lj_glow, python_run, tmp_path, flow_blocks):
    import yaml

    _, _, exp = lj_glow
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["tts_conf"]["prior_params"]["flow_conf"]["blocks"] == 2
    config["tts_conf"]["prior_params"]["flow_conf"]["blocks"] = flow_blocks
    edited = tmp_path / "config.yaml"
    edited.write_text(yaml.safe_dump(config))
    script = f"from espnet2.bin.tts_inference import Text2Speech; Text2Speech(train_config={str(edited)!r}, " \
             f"model_file={str(exp / '2epoch.pth')!r})"
    proc = python_run(["-c", script], check=False)
    assert proc.returncode != 0
    assert "do not fit this GlowWaveGAN config" in proc.stderr and "prior_params.flow_conf" in proc.stderr


def test_tts_inference_cli_names_failed_utterances_and_can_skip_them(lj_glow, tmp_path):
    root, _, exp = lj_glow
    text = tmp_path / "text"
    text.write_text("a_good the old clock struck eleven\nb_blank    \nc_good see below\nd_unknown ###\n",
                    encoding="utf-8")
    base = ["-m", "espnet2_glow_wavegan.bin.tts_inference", "--ngpu", "0", "--data_path_and_name_and_type",
            f"{text},text,text", "--train_config", str(exp / "config.yaml"), "--model_file", str(exp / "2epoch.pth")]
    stop = run_python(base + ["--output_dir", str(tmp_path / "stop")], cwd=root, check=False)
    assert stop.returncode != 0 and "ERROR: utterance b_blank:" in stop.stderr and "empty" in stop.stderr
    assert "Traceback" not in stop.stderr.split("ERROR: utterance b_blank:")[1]
    assert not (tmp_path / "stop/wav/c_good.wav").exists()  # stop: nothing after the failure
    skip = run_python(base + ["--output_dir", str(tmp_path / "skip"), "--on_error", "skip"], cwd=root, check=False)
    assert skip.returncode != 0 and "2 utterance(s) could not be synthesised" in skip.stderr
    assert sorted(w.stem for w in (tmp_path / "skip/wav").glob("*.wav")) == ["a_good", "c_good"]
    failed = dict(line.split(" ", 1) for line in (tmp_path / "skip/failed_utts").read_text().splitlines())
    assert sorted(failed) == ["b_blank", "d_unknown"]
    assert "empty" in failed["b_blank"] and "unknown to the model (all <unk>)" in failed["d_unknown"]


def test_the_text_windows_benchmark_synthesises_a_model_with_both_windowings(lj_glow, tmp_path, python_run):
    """benchmarks/text_windows.py on the trained tiny model: every paragraph in both windowings, scored."""
    import math

    from conftest import REPO

    _, _, exp = lj_glow
    text = tmp_path / "text"
    text.write_text("a1 the old clock struck eleven\na2 nobody moved in the hall\na3 rain fell on the roof all night\n")
    python_run([str(REPO / "benchmarks/text_windows.py"), "--exp_dir", str(exp), "--model_file", "2epoch.pth",
                "--text", str(text), "--sentences_per_paragraph", "2", "--window_tokens", "8", "--window_context", "2",
                "--threads", "1", "--out_dir", str(tmp_path)])
    result = json.loads((tmp_path / "text_windows.json").read_text())
    assert result["setup"]["paragraphs"] == 2 and result["setup"]["windowed_paragraphs"] == 2
    assert result["setup"]["settings"]["short"] == [8, 2]
    assert [r["keys"] for r in result["rows"]] == [["a1", "a2"], ["a3"]]
    assert all(math.isfinite(result["summary"][k]) for k in ("mcd", "log_f0_rmse", "duration_ratio"))
    assert all(r[name]["words"] == len(t.split()) for r, t in zip(result["rows"], (
        "the old clock struck eleven nobody moved in the hall", "rain fell on the roof all night")) for name in ("default", "short"))
    assert "| 8 + 2 each side |" in (tmp_path / "text_windows.md").read_text()
