"""ONNX export and the torch-free runtime: the same waveform and durations as the torch model, checked inputs."""

import json

import numpy as np
import pytest
import yaml
import torch

from conftest import run_python, tiny_generator_params
from test_streaming_and_batching import RECIPES_AND_DECODERS, perturbed_model, speaker_inputs

pytest.importorskip("onnx")  # the exporter's dependency (the "onnx" extra; in the lock)
onnxruntime = pytest.importorskip("onnxruntime")

# 20 tokens, as the tiny models' vocabulary: ESPnet's char tokenizer spells a space "<space>".
TOKENS = ["<blank>", "<unk>", "<space>", *"abcdefghijklmno", ".", "<sos/eos>"]
FRONTEND = dict(token_type="char", token_list=TOKENS, cleaner=None, g2p=None)
# Windows and chunks small enough that a test text uses them (the recipes' are 512 tokens, 1000 frames).
LONG_FORM = dict(prior_params={"synthesis_window_tokens": 16, "synthesis_window_context": 4}, decode_chunk_frames=40)


def exported(model, tmp_path, name="onnx", **kwargs):
    from espnet2_glow_wavegan.onnx.export import export
    from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech

    export(model, FRONTEND, tmp_path / name, **kwargs)
    return OnnxText2Speech(tmp_path / name, threads=1)


@pytest.fixture(scope="module")
def standard(tmp_path_factory):
    """``get(recipe, decoder)``: the perturbed tiny model (its token list set, as ESPnet does) and a fresh
    runtime over its graphs, exported once per module."""
    from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech

    models = {}

    def get(recipe, decoder):
        if (recipe, decoder) not in models:
            model = perturbed_model(recipe, decoder)
            model.set_token_list(TOKENS)
            folder = tmp_path_factory.mktemp(f"{recipe}_{decoder}")
            exported(model, folder)
            models[recipe, decoder] = model, folder / "onnx"
        model, folder = models[recipe, decoder]
        return model, OnnxText2Speech(folder, threads=1)

    return get


def numpy_speakers(speakers):
    return {k: v.numpy() for k, v in speakers.items()}


def relative_error(x, reference):
    reference = np.asarray(reference)
    return float(np.abs(np.asarray(x) - reference).max() / np.sqrt(np.mean(reference**2)))


def speaker_decoder(decoder):
    """The AISHELL-3 WaveGAN option of a decoder conditioned on the speaker (the recipe's conditions only the prior)."""
    return dict(wavegan_params=tiny_generator_params("aishell3", decoder, spks=5, spk_embed_dim=32, global_channels=16))


CASES = [(recipe, decoder, {}) for recipe, decoder in RECIPES_AND_DECODERS] + [
    ("aishell3", decoder, speaker_decoder(decoder)) for decoder in ("hifigan", "istft")]


@pytest.mark.parametrize("long_form", [False, True], ids=["sentence", "long-form"])
@pytest.mark.parametrize("recipe,decoder,overrides", CASES,
                         ids=[f"{r}-{d}{'-speaker-decoder' if o else ''}" for r, d, o in CASES])
def test_onnx_runtime_equals_the_torch_model(recipe, decoder, overrides, long_form, tmp_path):
    """noise_scale 0 and a given noise; the long form encodes in windows and decodes in chunks on both sides."""
    model = perturbed_model(recipe, decoder, **overrides, **(LONG_FORM if long_form else {}))
    assert bool(overrides) == (model.generator.wavegan.speaker.channels > 0)
    tts = exported(model, tmp_path)
    speakers = speaker_inputs(model)
    ids = torch.randint(2, 19, (70 if long_form else 23,))
    latent_dim = model.generator.wavegan.latent_dim
    for noise_scale in (0.0, 0.667):
        with torch.no_grad():
            frames = int(model.inference(ids, noise_scale=0.0, **speakers)["duration"].sum())
            noise = torch.randn(1, latent_dim, frames)
            reference = model.inference(ids, noise_scale=noise_scale, noise=noise, **speakers)
        out = tts.synthesize_ids(ids.numpy(), noise_scale=noise_scale, noise=noise.numpy(), **numpy_speakers(speakers))
        assert np.array_equal(out["duration"], reference["duration"].numpy())
        assert out["wav"].shape == tuple(reference["wav"].shape)
        assert relative_error(out["wav"], reference["wav"]) < 1e-4, noise_scale
        assert relative_error(out["feat_gen"], reference["feat_gen"]) < 1e-4


def test_knobs_are_runtime_inputs(standard):
    """length_scale changes the durations as in torch; noise_scale and the seed change the waveform."""
    model, tts = standard("ljspeech", "istft")
    ids = torch.randint(2, 19, (15,))
    with torch.no_grad():
        slow = model.inference(ids, noise_scale=0.0, length_scale=1.7)
    out = tts.synthesize_ids(ids.numpy(), noise_scale=0.0, length_scale=1.7)
    assert np.array_equal(out["duration"], slow["duration"].numpy())
    assert relative_error(out["wav"], slow["wav"]) < 1e-4
    one, again, other = (tts.synthesize_ids(ids.numpy(), noise_scale=0.667, seed=s)["wav"] for s in (1, 1, 2))
    assert np.array_equal(one, again) and not np.allclose(one, other)


def test_given_durations_replace_the_predicted_ones_as_in_torch(standard):
    """synthesize_ids / stream_ids with durations: torch's waveform, the same stream, the same refusals."""
    model, tts = standard("ljspeech", "istft")
    ids = torch.randint(2, 19, (15,))
    durations = torch.randint(0, 6, (15,))
    durations[0] = 3
    with torch.no_grad():
        reference = model.inference(ids, durations=durations, noise_scale=0.0)["wav"]
    out = tts.synthesize_ids(ids.numpy(), durations=durations.numpy(), noise_scale=0.0)
    assert np.array_equal(out["duration"], durations.numpy())
    assert relative_error(out["wav"], reference) < 1e-4
    stream = tts.stream_ids(ids.numpy(), durations=durations.numpy(), noise_scale=0.0, chunk_frames=7,
                            first_chunk_frames=3)
    assert relative_error(np.concatenate(list(stream)), out["wav"]) < 1e-5
    for bad in (durations[:-1], durations - 10):
        with pytest.raises(ValueError, match="durations must give") as raised:
            tts.synthesize_ids(ids.numpy(), durations=bad.numpy())
        with torch.no_grad(), pytest.raises(ValueError) as torch_raised:
            model.inference(ids, durations=bad)
        assert str(raised.value) == str(torch_raised.value)


def test_text_goes_through_the_front_end(standard):
    _, tts = standard("ljspeech", "hifigan")
    ids = tts.token_ids("abc de.")
    assert ids.tolist() == [TOKENS.index(t) for t in ["a", "b", "c", "<space>", "d", "e", "."]]
    assert np.array_equal(tts("abc de.", noise_scale=0.0)["wav"], tts.synthesize_ids(ids, noise_scale=0.0)["wav"])


@pytest.mark.parametrize("decoder", ["hifigan", "istft"])
def test_onnx_stream_equals_the_one_pass(decoder, standard):
    model, tts = standard("aishell3", decoder)
    speakers = numpy_speakers(speaker_inputs(model))
    text = "abcdefg hijklmno abcdefg hijklmno abcdefg hijk."
    whole = tts(text, noise_scale=0.667, seed=4, **speakers)["wav"]
    for first, size in ((1, 1), (5, 7), (16, 64), (10_000, 10_000)):
        stream = tts.stream(text, noise_scale=0.667, seed=4, chunk_frames=size, first_chunk_frames=first, **speakers)
        chunks = list(stream)
        assert [c.size for c in chunks] == [(b - a) * tts.hop for a, b in stream.chunk_bounds()]
        assert relative_error(np.concatenate(chunks), whole) < 1e-5, (first, size)
    # With half the flow's reach as context, the chunk edges show.
    stream = tts.stream(text, noise_scale=0.0, chunk_frames=7, first_chunk_frames=5, **speakers)
    stream.flow.reach = [r // 2 for r in stream.flow.reach]
    assert relative_error(np.concatenate(list(stream)), tts(text, noise_scale=0.0, **speakers)["wav"]) > 1e-5


def test_istft_head_as_matmul_and_overlap_add_equals_vocos():
    from vocos.heads import ISTFTHead

    from espnet2_glow_wavegan.onnx.graphs import MatmulISTFTHead

    torch.manual_seed(0)
    for n_fft, hop in ((1024, 256), (1200, 300), (48, 12), (40, 12)):  # the last: n_fft not a multiple of hop
        head = ISTFTHead(dim=16, n_fft=n_fft, hop_length=hop, padding="same")
        x = torch.randn(2, 37, 16)
        with torch.no_grad():
            reference = head(x)
            y = MatmulISTFTHead(head)(x)
        assert y.shape == reference.shape == (2, 37 * hop)
        assert relative_error(y.numpy(), reference.numpy()) < 1e-5


def test_exported_graphs_are_plain_onnx(standard):
    """Folded weight norm, the 1x1 inverses as constants, no DFT/STFT operator, dynamic lengths."""
    import onnx

    _, tts = standard("ljspeech", "istft")
    ops = {name: {n.op_type for n in onnx.load(str(tts.model_dir / f"{name}.onnx")).graph.node}
           for name in ("text_encoder", "sentence", *tts.flow_blocks, "decoder")}
    assert len(tts.flow_blocks) == len(tts.config["flow_block_reach"]) > 1
    assert not ops["decoder"] & {"DFT", "STFT"}
    assert not set().union(*(ops[name] for name in tts.flow_blocks)) & {"Inverse", "Det"}
    assert all(not any("weight_g" in i.name for i in onnx.load(str(tts.model_dir / f"{n}.onnx")).graph.initializer)
               for n in ops)
    for name in ("flow_0", "decoder"):
        shape = tts.sessions[name].get_inputs()[0].shape
        assert isinstance(shape[2], str), (name, shape)  # a named, dynamic length


def test_export_keeps_the_model_and_refuses_a_non_empty_folder(tmp_path):
    from espnet2_glow_wavegan.onnx.export import export

    model = perturbed_model("ljspeech", "hifigan")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    exported(model, tmp_path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    keep = tmp_path / "taken" / "mine.txt"
    keep.parent.mkdir()
    keep.write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        export(model, FRONTEND, keep.parent)
    assert keep.read_text() == "user data"


def test_a_damaged_export_is_named_with_the_command_that_remakes_it(standard, tmp_path, caplog):
    """The runtime checks the folder against the export's manifest before onnxruntime reads a graph."""
    import shutil

    from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech

    _, tts = standard("ljspeech", "istft")
    manifest = json.loads((tts.model_dir / "manifest.json").read_text())
    assert {"config.yaml", "flow_0.onnx", "decoder.onnx"} <= set(manifest["files"]) and "espnet2-glow-wavegan" in manifest["exporter"]
    for damage, message in (("missing", "flow_0.onnx is missing"), ("cut", "decoder.onnx is damaged: "),
                            ("flipped", "decoder.onnx is damaged: its sha256")):
        folder = tmp_path / damage
        shutil.copytree(tts.model_dir, folder)
        if damage == "missing":
            (folder / "flow_0.onnx").unlink()
        else:
            data = (folder / "decoder.onnx").read_bytes()
            data = data[: len(data) // 2] if damage == "cut" else data[:-1] + bytes([data[-1] ^ 1])
            (folder / "decoder.onnx").write_bytes(data)
        with pytest.raises(ValueError, match=message) as error:
            OnnxText2Speech(folder)
        assert "bin.export_onnx" in str(error.value)
    old = tmp_path / "old"  # exported before manifests: loads, with a notice
    shutil.copytree(tts.model_dir, old)
    (old / "manifest.json").unlink()
    caplog.set_level("WARNING")
    assert OnnxText2Speech(old, threads=1)("abc.", noise_scale=0.0)["wav"].size > 0
    assert "has no manifest.json" in caplog.text
    # exported with the inverse flow as one graph: named, with the command that exports it again
    config = yaml.safe_load((old / "config.yaml").read_text())
    del config["flow_block_reach"]
    (old / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="one graph .an older export.*bin.export_onnx"):
        OnnxText2Speech(old, threads=1)


def test_the_runtime_cli_keeps_an_existing_output_and_names_a_missing_folder(standard, tmp_path):
    from espnet2_glow_wavegan.onnx.runtime import main

    _, tts = standard("ljspeech", "istft")
    keep = tmp_path / "keep.wav"
    keep.write_bytes(b"user data")
    with pytest.raises(ValueError, match="unknown to the model"):
        main(["--model_dir", str(tts.model_dir), "--text", "!!!", "--output", str(keep), "--threads", "1"])
    assert keep.read_bytes() == b"user data" and [p.name for p in tmp_path.iterdir()] == ["keep.wav"]
    with pytest.raises(SystemExit, match=f"the folder {tmp_path / 'no/such'} does not exist"):
        main(["--model_dir", str(tts.model_dir), "--text", "abc.", "--output", str(tmp_path / "no/such/x.wav")])
    main(["--model_dir", str(tts.model_dir), "--text", "abc.", "--output", str(keep), "--threads", "1"])
    assert keep.read_bytes()[:4] == b"RIFF"


def test_a_failed_export_leaves_no_folder(tmp_path, monkeypatch):
    from espnet2_glow_wavegan.onnx import export as export_module

    def broken(*args, **kwargs):
        raise RuntimeError("the exporter broke")

    monkeypatch.setattr(export_module, "export_graph", broken)
    with pytest.raises(RuntimeError, match="the exporter broke"):
        export_module.export(perturbed_model("ljspeech", "istft"), FRONTEND, tmp_path / "onnx")
    assert list(tmp_path.iterdir()) == []


def test_int8_graphs_keep_the_durations_and_stay_close(tmp_path):
    model = perturbed_model("ljspeech", "istft")
    exported(model, tmp_path, quantize=True)
    from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech

    full, int8 = (OnnxText2Speech(tmp_path / "onnx", precision=p, threads=1) for p in ("float32", "int8"))
    assert "DynamicQuantizeLinear" in {n.op_type for n in __import__("onnx").load(
        str(tmp_path / "onnx" / "decoder.int8.onnx")).graph.node}
    a, b = full("a bcd efg hij klm no.", noise_scale=0.0), int8("a bcd efg hij klm no.", noise_scale=0.0)
    assert np.array_equal(a["duration"], b["duration"])
    # RMS of the difference over the RMS: 0.028 measured on this perturbed model (0.12 at the largest
    # sample); twice that fails an int8 path that has gone wrong, where the old bound (100 % of the
    # RMS, at the largest sample) accepted nearly anything.
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
    assert 0 < rms(b["wav"] - a["wav"]) / rms(a["wav"]) < 0.06
    exported(perturbed_model("ljspeech", "hifigan"), tmp_path, name="float_only")
    with pytest.raises(ValueError, match="no int8 graphs"):
        OnnxText2Speech(tmp_path / "float_only", precision="int8")


BAD_INPUTS = [
    (dict(text=""), "the input text is empty"),
    (dict(text=" ... "), "nothing to speak"),
    (dict(text="xyz"), "unknown to the model"),
    (dict(text="abc", noise_scale=-1.0), "noise_scale must be"),
    (dict(text="abc", length_scale=0.0), "length_scale must be"),
    (dict(text="abc", length_scale=float("nan")), "length_scale must be"),
    (dict(text="abc", max_output_seconds=0.0), "max_output_seconds must be"),
    (dict(text="abc", sids=np.array([1])), "no speaker table"),
    (dict(text="abc", spembs=np.zeros(4)), "no speaker embedding"),
]
SPEAKER_BAD_INPUTS = [
    (dict(text="abc"), "pass sids"),
    (dict(text="abc", sids=99), "outside the speaker table"),
    (dict(text="abc", sids=1), "pass spembs"),
    (dict(text="abc", sids=1, spembs=np.zeros(3)), "dimensions, the model takes"),
    (dict(text="abc", sids=1, spembs=np.full(32, np.nan)), "NaN or Inf"),
]


@pytest.mark.parametrize("recipe,inputs,message",
                         [("ljspeech", *case) for case in BAD_INPUTS] + [("aishell3", *case) for case in SPEAKER_BAD_INPUTS])
def test_bad_input_is_refused_before_onnxruntime_as_torch_refuses_it(recipe, inputs, message, standard):
    model, tts = standard(recipe, "istft")

    class Untouchable:
        def run(self, *args, **kwargs):
            raise AssertionError("onnxruntime was reached")

    tts.sessions = {name: Untouchable() for name in tts.sessions}
    with pytest.raises(ValueError, match=message) as raised:
        tts(**inputs)
    # The torch model's message for the same input, when it has one (it takes token ids and tensors).
    ids = torch.from_numpy(tts.token_ids(inputs["text"]))
    torch_inputs = {k: torch.as_tensor(np.asarray(v)) for k, v in inputs.items() if k in ("sids", "spembs")}
    knobs = {k: v for k, v in inputs.items() if k.endswith("_scale") or k == "max_output_seconds"}
    with torch.no_grad(), pytest.raises(ValueError) as torch_raised:
        model.inference(ids, **torch_inputs, **knobs)
    assert str(raised.value) == str(torch_raised.value)


def test_too_long_an_output_is_refused_before_the_flow(standard):
    _, tts = standard("ljspeech", "istft")
    for name in tts.flow_blocks:
        tts.sessions[name] = None  # reaching the flow would fail otherwise than with the message
    with pytest.raises(ValueError, match="over max_output_seconds"):
        tts("abc de.", length_scale=2.0, max_output_seconds=0.001)


def test_the_runtime_runs_where_torch_cannot_be_imported(standard, tmp_path):
    model, tts = standard("aishell3", "istft")
    speakers = numpy_speakers(speaker_inputs(model))
    expected = tts("abc de.", noise_scale=0.667, seed=7, **speakers)["wav"]
    np.save(tmp_path / "expected.npy", expected)
    np.save(tmp_path / "spembs.npy", speakers["spembs"])
    script = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not available in this process")
sys.meta_path.insert(0, NoTorch())
import numpy as np
from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech
tts = OnnxText2Speech("{tts.model_dir}", threads=1)
out = tts("abc de.", sids=1, spembs=np.load("{tmp_path / 'spembs.npy'}"), noise_scale=0.667, seed=7)
assert np.array_equal(out["wav"], np.load("{tmp_path / 'expected.npy'}")), "not the same waveform"
assert "torch" not in sys.modules
print("synthesised without torch")
"""
    result = run_python(["-c", script], cwd=tmp_path)
    assert "synthesised without torch" in result.stdout


def test_convolutions_as_matmuls_compute_the_same():
    """The int8 flow's form: every stride-1 Conv1d as one matrix product (dilated, padded, 1x1, with a bias or not)."""
    from espnet2_glow_wavegan.onnx.graphs import ConvAsMatMul, convolutions_as_matmuls

    torch.manual_seed(0)
    x = torch.randn(2, 6, 31)
    for conv in (torch.nn.Conv1d(6, 8, 5, padding=4, dilation=2), torch.nn.Conv1d(6, 4, 1, bias=False),
                 torch.nn.Conv1d(6, 8, 3, padding=1)):
        with torch.no_grad():
            assert torch.allclose(ConvAsMatMul(conv)(x), conv(x), atol=1e-6)
    grouped = torch.nn.Sequential(torch.nn.Conv1d(6, 6, 7, padding=3, groups=6), torch.nn.Conv1d(6, 6, 1))
    convolutions_as_matmuls(grouped)
    assert isinstance(grouped[0], torch.nn.Conv1d) and isinstance(grouped[1], ConvAsMatMul)  # grouped ones stay
