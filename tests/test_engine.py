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
