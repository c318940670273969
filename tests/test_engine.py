"""The synthesis engine: every (mode x backend) pair on the same request gives the same waveform."""

import numpy as np
import pytest
import torch
from test_streaming_and_batching import perturbed_model, relative_error

pytest.importorskip("onnxruntime")

# Windows of 16 tokens with 4 of context, decode chunks of 16 frames: the long form at test sizes.
LONG_FORM = dict(prior_params={"synthesis_window_tokens": 16, "synthesis_window_context": 4}, decode_chunk_frames=16)
REQUESTS = {"sentence": 20, "paragraph": 60}  # tokens: encoded whole / in windows
TOKENS = ["<blank>", "<unk>", "<space>", ".", ","] + [chr(c) for c in range(ord("a"), ord("a") + 15)]  # the tiny vocabulary: 20


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    from espnet2_glow_wavegan.onnx.export import export
    from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech

    eager = perturbed_model("ljspeech", "istft", **LONG_FORM)
    optimized = perturbed_model("ljspeech", "istft", optimized=True, **LONG_FORM)
    folder = tmp_path_factory.mktemp("engine") / "onnx"
    export(eager, dict(token_type="char", token_list=TOKENS, cleaner=None, g2p=None), folder)
    return dict(torch=eager, torch_optimized=optimized, onnx=OnnxText2Speech(folder, threads=1))


def synthesise(backend, mode, ids, noise):
    """The waveform of token ids ``ids`` with the standard-normal draw ``noise``, as a numpy array."""
    with torch.no_grad():
        if isinstance(backend, torch.nn.Module):
            if mode == "one_pass":
                return backend.inference(ids, noise_scale=0.667, noise=noise)["wav"].numpy()
            if mode == "stream":
                stream = backend.inference_stream(ids, noise_scale=0.667, noise=noise, chunk_frames=7, first_chunk_frames=5)
                return torch.cat(list(stream)).numpy()
            # batch: the request padded beside a shorter text (the zero noise of its frames past the item's)
            other = ids[: len(ids) // 2]
            text = torch.zeros(2, len(ids), dtype=torch.long)
            text[0], text[1, : len(other)] = ids, other
            outs = backend.batch_inference(text, torch.tensor([len(ids), len(other)]), noise_scale=0.667,
                                           noise=torch.cat([noise, torch.zeros_like(noise)]))
            return outs[0]["wav"].numpy()
        if mode == "one_pass":
            return backend.synthesize_ids(ids.numpy(), noise_scale=0.667, noise=noise.numpy())["wav"]
        stream = backend.stream_ids(ids.numpy(), noise_scale=0.667, noise=noise.numpy(), chunk_frames=7,
                                    first_chunk_frames=5)
        return np.concatenate(list(stream))


PAIRS = [(b, m) for b in ("torch", "torch_optimized", "onnx") for m in ("one_pass", "stream", "batch")
         if not (b == "onnx" and m == "batch")]  # the ONNX graphs take one sentence


@pytest.mark.parametrize("request_name", list(REQUESTS))
@pytest.mark.parametrize("backend,mode", PAIRS, ids=[f"{b}-{m}" for b, m in PAIRS])
def test_every_mode_and_backend_gives_the_reference_waveform(backends, backend, mode, request_name):
    torch.manual_seed(3)
    ids = torch.randint(5, len(TOKENS), (REQUESTS[request_name],))
    reference_model = backends["torch"]
    with torch.no_grad():
        frames = int(reference_model.inference(ids, noise_scale=0.0)["duration"].sum())
        noise = torch.randn(1, reference_model.generator.wavegan.latent_dim, frames)
        reference = reference_model.inference(ids, noise_scale=0.667, noise=noise)["wav"].numpy()
    assert frames > LONG_FORM["decode_chunk_frames"]  # decoded in chunks: the long form's decoding is in play
    wav = synthesise(backends[backend], mode, ids, noise)
    assert wav.shape == reference.shape
    assert relative_error(torch.from_numpy(wav), torch.from_numpy(reference)) < 1e-4


def test_a_paragraph_is_encoded_in_windows_at_synthesis_and_a_sentence_whole():
    model = perturbed_model("ljspeech", "istft", prior_params={"synthesis_window_tokens": 8, "synthesis_window_context": 4})
    seen = []
    model.generator.prior.text_encoder.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0].size(1)))
    sentence, paragraph = torch.randint(5, 20, (16,)), torch.randint(5, 20, (45,))
    with torch.no_grad():
        model.inference(sentence, noise_scale=0.0)
        assert seen == [16]  # up to a window and both contexts: whole, as in training
        seen.clear()
        model.inference(paragraph, noise_scale=0.0)
        assert max(seen) <= 8 + 2 * 4 and len(seen) == 6
        # Training (and padded batches) encode whole texts.
        seen.clear()
        model.generator.prior.text_states(paragraph.view(1, -1), torch.tensor([45]))
        assert seen == [45]


def test_a_paragraph_streams_from_its_first_text_window():
    """The stream encodes the text windows its chunks reach; the seeded noise is drawn as the one pass draws it."""
    model = perturbed_model("ljspeech", "istft", prior_params={"synthesis_window_tokens": 8, "synthesis_window_context": 4})
    seen = []
    model.generator.prior.text_encoder.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0].size(1)))
    paragraph = torch.randint(5, 20, (45,))
    durations = torch.full((45,), 3)  # 24 frames a window
    with torch.no_grad():
        torch.manual_seed(7)
        whole = model.inference(paragraph, durations=durations, noise_scale=0.667)["wav"]
        seen.clear()
        torch.manual_seed(7)
        stream = model.inference_stream(paragraph, durations=durations, noise_scale=0.667, chunk_frames=8,
                                        first_chunk_frames=4)
        assert len(seen) == 1  # the first window, for the speaker conditions and the first durations
        chunks = iter(stream)
        first = next(chunks)
        reach = stream.flow.factor * sum(stream.flow.reach) + stream.context + 4
        assert len(seen) == 1 + -(-(reach - 24) // 24) < 6  # only the windows the first chunk's reach covers
        torch.randn(100)  # the global generator used between chunks: the sentence has its own
        rest = list(chunks)
        assert len(seen) == 6
    assert relative_error(torch.cat([first] + rest), whole) < 1e-5


def test_the_durations_of_a_paragraph_stream_encode_its_text_and_its_length_is_checked_window_by_window():
    model = perturbed_model("ljspeech", "istft", prior_params={"synthesis_window_tokens": 8, "synthesis_window_context": 4})
    paragraph = torch.randint(5, 20, (45,))
    with torch.no_grad():
        alone = model.inference(paragraph, noise_scale=0.0)
        stream = model.inference_stream(paragraph, noise_scale=0.0)
        assert torch.equal(stream.durations, alone["duration"]) and stream.num_samples == alone["wav"].numel()
        assert relative_error(torch.cat(list(stream)), alone["wav"]) < 1e-5
        # A limit the first window fits in and the paragraph does not: the one pass is refused before it runs
        # the flow, the stream before the window that crosses it is synthesised.
        hop, fs = model.generator.wavegan.upsample_factor, model.fs
        first_window = int(alone["duration"][:8].sum())
        limit = (first_window + 1) * hop / fs
        with pytest.raises(ValueError, match="over max_output_seconds"):
            model.inference(paragraph, noise_scale=0.0, max_output_seconds=limit)
        stream = model.inference_stream(paragraph, noise_scale=0.0, max_output_seconds=limit, chunk_frames=1,
                                        first_chunk_frames=1)
        chunks = []
        with pytest.raises(ValueError, match="over max_output_seconds"):
            for chunk in stream:
                chunks.append(chunk)
        assert sum(c.numel() for c in chunks) <= first_window * hop


def test_the_onnx_runtime_streams_a_paragraph_from_its_first_window_with_the_seeded_noise_of_its_one_pass(backends):
    tts = backends["onnx"]
    calls = []
    encoder = tts.sessions["text_encoder"]

    class Counted:
        def run(self, *args, **kwargs):
            calls.append(1)
            return encoder.run(*args, **kwargs)

    ids = np.random.default_rng(0).integers(5, len(TOKENS), 200)
    whole = tts.synthesize_ids(ids, noise_scale=0.667, seed=11)["wav"]
    tts.sessions["text_encoder"] = Counted()
    try:
        stream = tts.stream_ids(ids, noise_scale=0.667, seed=11, chunk_frames=8, first_chunk_frames=4)
        chunks = iter(stream)
        first = next(chunks)
        encoded_for_the_first_chunk = len(calls)
        streamed = np.concatenate([first] + list(chunks))
    finally:
        tts.sessions["text_encoder"] = encoder
    windows = -(-200 // LONG_FORM["prior_params"]["synthesis_window_tokens"])
    assert encoded_for_the_first_chunk < windows == len(calls)
    assert relative_error(torch.from_numpy(streamed), torch.from_numpy(whole)) < 1e-5
