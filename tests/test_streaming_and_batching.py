"""Streamed synthesis equals the one-pass waveform; a padded batch equals each text synthesised alone."""

import pytest
import torch

from conftest import tiny_glow_wavegan

RECIPES_AND_DECODERS = [("ljspeech", "hifigan"), ("ljspeech", "istft"), ("aishell3", "hifigan"), ("aishell3", "istft")]


def perturbed_model(recipe, decoder, optimized=False, **overrides):
    """A tiny model whose every weight is moved off its initial value.

    Fresh couplings start as the identity (zero output layer) and ActNorm as the identity map:
    without this the flow would pass the equality tests whatever context it read.
    """
    model = tiny_glow_wavegan(recipe, decoder=decoder, **overrides).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.optimize_for_inference() if optimized else model


def speaker_inputs(model, batch=None):
    """Speaker ids/embeddings as the model takes them (one item, or ``batch`` items)."""
    inputs = {}
    if model.spks:
        inputs["sids"] = torch.tensor([1]) if batch is None else torch.arange(batch) % model.spks
    if model.spk_embed_dim:
        inputs["spembs"] = torch.randn(model.spk_embed_dim if batch is None else (batch, model.spk_embed_dim))
    return inputs


def relative_error(x, reference):
    return float((x - reference).abs().max() / reference.pow(2).mean().sqrt())


@pytest.mark.parametrize("recipe,decoder", RECIPES_AND_DECODERS)
def test_streamed_chunks_equal_the_one_pass_waveform(recipe, decoder):
    model = perturbed_model(recipe, decoder)
    speakers = speaker_inputs(model)
    text, durations = torch.randint(2, 20, (23,)), torch.randint(1, 9, (23,))
    hop = model.generator.wavegan.upsample_factor
    with torch.no_grad():
        for noise_scale in (0.0, 0.667):
            torch.manual_seed(5)  # the stream draws the sentence's noise as the one pass does
            whole = model.inference(text, durations=durations, noise_scale=noise_scale, **speakers)["wav"]
            frames = int(durations.sum())
            # 1-frame chunks; sizes that do not divide the length; larger than the sentence.
            for first, size in ((1, 1), (5, 7), (16, 64), (frames + 10, frames + 10)):
                torch.manual_seed(5)
                stream = model.inference_stream(text, durations=durations, noise_scale=noise_scale,
                                                chunk_frames=size, first_chunk_frames=first, **speakers)
                assert stream.num_samples == whole.numel() and torch.equal(stream.durations, durations)
                chunks = list(stream)
                assert [c.numel() for c in chunks] == [(end - start) * hop for start, end in stream.chunk_bounds()]
                assert chunks[0].numel() == min(first, frames) * hop
                streamed = torch.cat(chunks)
                assert streamed.shape == whole.shape
                assert relative_error(streamed, whole) < 1e-5, (noise_scale, first, size)


def test_the_stream_reads_exactly_the_context_it_needs():
    """With one frame less of decoder context or flow reach, the chunks no longer equal the one pass."""
    model = perturbed_model("ljspeech", "istft")
    text, durations = torch.randint(2, 20, (23,)), torch.randint(1, 9, (23,))
    with torch.no_grad():
        whole = model.inference(text, durations=durations, noise_scale=0.0)["wav"]
        for short in ("decoder", "flow"):
            stream = model.inference_stream(text, durations=durations, noise_scale=0.0, chunk_frames=7,
                                            first_chunk_frames=5)
            if short == "decoder":
                stream.context -= 1
            else:
                stream.flow.reach = [max(0, r - 1) for r in stream.flow.reach]
            assert relative_error(torch.cat(list(stream)), whole) > 1e-5, short


def test_the_first_chunk_runs_the_flow_only_as_far_as_it_needs():
    model = perturbed_model("ljspeech", "istft")
    text, durations = torch.randint(2, 20, (40,)), torch.full((40,), 6)  # 240 frames
    with torch.no_grad():
        stream = model.inference_stream(text, durations=durations, chunk_frames=32, first_chunk_frames=8)
        chunks = iter(stream)
        next(chunks)
    flow = stream.flow
    # Each stage ran as far as the stages after it read, and no further: the context shrinks stage by stage.
    reach_after = [sum(flow.reach[k + 1:]) for k in range(len(flow.reach))]
    needed = -(-(8 + stream.context) // flow.factor)
    assert flow.done[1:] == [min(flow.frames, needed + r) for r in reach_after]
    assert flow.done[-1] < flow.frames / 4


def test_streaming_is_refused_a_batch_and_bad_chunk_sizes():
    model = perturbed_model("ljspeech", "istft")
    with torch.no_grad(), pytest.raises(ValueError, match="chunk_frames and first_chunk_frames must be >= 1"):
        model.inference_stream(torch.arange(2, 9), chunk_frames=0)


@pytest.mark.parametrize("optimized", [False, True], ids=["as-trained", "optimized"])
@pytest.mark.parametrize("recipe,decoder", RECIPES_AND_DECODERS)
def test_a_padded_batch_equals_each_text_alone(recipe, decoder, optimized):
    model = perturbed_model(recipe, decoder, optimized)
    sizes = [23, 7, 15, 1, 30]
    text = torch.zeros(len(sizes), max(sizes), dtype=torch.long)
    for b, size in enumerate(sizes):
        text[b, :size] = torch.randint(2, 20, (size,))
    speakers = speaker_inputs(model, len(sizes))
    with torch.no_grad():
        batch = model.batch_inference(text, torch.tensor(sizes), noise_scale=0.0, **speakers)
        for b, size in enumerate(sizes):
            alone = model.inference(text[b, :size], noise_scale=0.0, **{k: v[b] for k, v in speakers.items()})
            assert torch.equal(batch[b]["duration"], alone["duration"]) and torch.equal(batch[b]["att_w"], alone["att_w"])
            assert batch[b]["wav"].shape == alone["wav"].shape and batch[b]["feat_gen"].shape == alone["feat_gen"].shape
            assert relative_error(batch[b]["wav"], alone["wav"]) < 1e-4, b


@pytest.mark.parametrize("recipe,decoder", RECIPES_AND_DECODERS)
def test_a_padded_batch_with_the_same_noise_equals_each_text_alone(recipe, decoder):
    """Not only at noise_scale 0: each item given its part of the batch's noise is its batch-1 synthesis."""
    model = perturbed_model(recipe, decoder)
    sizes = [23, 7, 15]
    text = torch.zeros(len(sizes), max(sizes), dtype=torch.long)
    for b, size in enumerate(sizes):
        text[b, :size] = torch.randint(2, 20, (size,))
    speakers = speaker_inputs(model, len(sizes))
    one = lambda b: {k: v[b] for k, v in speakers.items()}  # noqa: E731
    with torch.no_grad():
        frames = [int(model.inference(text[b, :n], noise_scale=0.0, **one(b))["duration"].sum()) for b, n in enumerate(sizes)]
        noise = torch.randn(len(sizes), model.generator.wavegan.latent_dim, max(frames))
        batch = model.batch_inference(text, torch.tensor(sizes), noise_scale=0.667, noise=noise, **speakers)
        for b, size in enumerate(sizes):
            alone = model.inference(text[b, :size], noise_scale=0.667, noise=noise[b : b + 1, :, : frames[b]], **one(b))
            zero = model.inference(text[b, :size], noise_scale=0.0, **one(b))
            assert relative_error(batch[b]["wav"], alone["wav"]) < 1e-4, b
            assert relative_error(alone["wav"], zero["wav"]) > 1e-2, b  # the noise mattered


def test_texts_too_long_for_one_encoder_window_are_synthesised_alone_in_a_batch():
    model = perturbed_model("ljspeech", "istft", prior_params=dict(synthesis_window_tokens=8,
                                                                   synthesis_window_context=2))
    sizes = [20, 9, 12]  # 20 and 12 are encoded in windows
    text = torch.zeros(3, 20, dtype=torch.long)
    for b, size in enumerate(sizes):
        text[b, :size] = torch.randint(2, 20, (size,))
    with torch.no_grad():
        batch = model.batch_inference(text, torch.tensor(sizes), noise_scale=0.0)
        for b, size in enumerate(sizes):
            alone = model.inference(text[b, :size], noise_scale=0.0)
            assert torch.equal(batch[b]["duration"], alone["duration"])
            assert relative_error(batch[b]["wav"], alone["wav"]) < 1e-4, b


def test_a_bad_item_of_a_batch_is_named():
    model = perturbed_model("ljspeech", "istft")
    text = torch.tensor([[2, 3, 4], [1, 1, 0]])
    with torch.no_grad(), pytest.raises(ValueError, match=r"item 1 of the batch: every symbol .* unknown"):
        model.batch_inference(text, torch.tensor([3, 2]))
    with torch.no_grad(), pytest.raises(ValueError, match=r"item 0 of the batch: the output would last"):
        model.batch_inference(text[:1], torch.tensor([3]), durations=torch.tensor([[10**6, 1, 1]]))


def test_the_stream_cli_splits_text_into_sentences():
    from espnet2_glow_wavegan.bin.synthesize import sentences

    assert sentences("  One. Two!  Three?\nFour; five") == ["One.", "Two!", "Three?", "Four;", "five"]
    assert sentences("Fine. ... ?!") == ["Fine. ... ?!"]  # nothing to speak joins the sentence before
    assert sentences("Dr.Who 3.5 km.") == ["Dr.Who 3.5 km."]  # no space after the point: one sentence
    assert sentences("你好。今天很好！") == ["你好。", "今天很好！"]
    assert sentences("   ") == []
