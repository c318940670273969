"""The synthesis plan (window arithmetic, knobs, input checks) that the torch model and the ONNX runtime share."""

import itertools

import pytest

from espnet2_glow_wavegan.synthesis.checks import check_speaker_inputs
from espnet2_glow_wavegan.synthesis.plan import (
    Span,
    chunk_bounds,
    decode_spans,
    stream_spans,
    synthesis_knobs,
    text_spans,
)


def assert_tiles(spans, length, context):
    """The spans' outputs tile [0, length) in order; each window holds its output and ``context`` each side."""
    assert [s.start for s in spans] == [0] + [s.end for s in spans[:-1]] and spans[-1].end == length
    for s in spans:
        assert s.lo == max(0, s.start - context) and s.hi == min(length, s.end + context)
        assert s.kept().stop - s.kept().start == s.end - s.start


@pytest.mark.parametrize("length,size,context", list(itertools.product([1, 7, 16, 17, 100], [1, 4, 16], [0, 3])))
def test_decode_spans_tile_the_latent_with_the_decoders_context(length, size, context):
    spans = decode_spans(length, size, context)
    if length <= size:
        assert spans == [Span(0, length, 0, length)]
    else:
        assert len(spans) == -(-length // size)
        assert_tiles(spans, length, context)


def test_decode_spans_without_chunks_is_one_pass():
    assert decode_spans(5000, 0, 8) == [Span(0, 5000, 0, 5000)]


@pytest.mark.parametrize("tokens", [1, 15, 16, 17, 40, 100])
def test_text_is_encoded_whole_up_to_a_window_and_its_two_contexts(tokens):
    spans = text_spans(tokens, 8, 4)
    if tokens <= 16:
        assert spans == [Span(0, tokens, 0, tokens)]
    else:
        assert all(s.end - s.start == 8 for s in spans[:-1])
        assert_tiles(spans, tokens, 4)


def test_chunks_start_small_and_double_up_to_the_largest():
    assert list(chunk_bounds(100, 4, 32)) == [(0, 4), (4, 12), (12, 28), (28, 60), (60, 92), (92, 100)]
    assert list(chunk_bounds(3, 16, 256)) == [(0, 3)]
    with pytest.raises(ValueError, match="chunk_frames and first_chunk_frames must be >= 1"):
        list(chunk_bounds(10, 0, 4))


def test_stream_spans_are_the_chunks_with_the_decoders_context():
    spans = list(stream_spans(100, 4, 32, 6))
    assert [(s.start, s.end) for s in spans] == list(chunk_bounds(100, 4, 32))
    assert_tiles(spans, 100, 6)


def test_knobs_left_out_come_from_the_model_and_are_checked():
    defaults = dict(noise_scale=0.667, length_scale=1.0, max_output_seconds=60.0)
    assert synthesis_knobs(defaults) == (0.667, 1.0, 60.0)
    assert synthesis_knobs(defaults, noise_scale=0.0, length_scale=1.5) == (0.0, 1.5, 60.0)
    with pytest.raises(ValueError, match="length_scale must be a finite number > 0"):
        synthesis_knobs(defaults, length_scale=0)
    with pytest.raises(ValueError, match="noise_scale must be a finite number >= 0"):
        synthesis_knobs(dict(defaults, noise_scale=-1.0))


@pytest.mark.parametrize("model,given,message", [
    (dict(spks=None, spk_embed_dim=None), dict(sids=[1]), "no speaker table .*takes no sids"),
    (dict(spks=None, spk_embed_dim=None), dict(spembs_shape=(8,)), "takes no speaker embedding .*takes no spembs"),
    (dict(spks=4, spk_embed_dim=None), dict(), r"speaker table \(spks=4\): pass sids"),
    (dict(spks=4, spk_embed_dim=None), dict(sids=[4]), r"speaker id \[4\] is outside the speaker table 0..3"),
    (dict(spks=4, spk_embed_dim=None), dict(sids=[-1]), "outside the speaker table"),
    (dict(spks=None, spk_embed_dim=8), dict(), r"speaker embeddings \(spk_embed_dim=8\): pass spembs"),
    (dict(spks=None, spk_embed_dim=8), dict(spembs_shape=(1, 6)), "speaker embedding has 6 dimensions, the model takes 8"),
    (dict(spks=None, spk_embed_dim=8), dict(spembs_shape=(8,), spembs_finite=False), "contains NaN or Inf"),
])
def test_speaker_inputs_are_refused_by_name(model, given, message):
    with pytest.raises(ValueError, match=message):
        check_speaker_inputs(model["spks"], model["spk_embed_dim"], **given)


def test_speaker_inputs_the_model_takes_pass():
    check_speaker_inputs(4, 8, sids=[3], spembs_shape=(1, 8))
    check_speaker_inputs(4, None, sids=())  # given, not read back (training)
    check_speaker_inputs(4, 8, required=False)  # only what is given is checked
