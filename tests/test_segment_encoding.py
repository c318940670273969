"""Segment-first WaveGAN encoding: the window's posterior is the whole utterance's, exactly."""

import copy

import pytest
import torch
import yaml

from conftest import REPO
from espnet2_glow_wavegan.wavegan.generator import WaveGANGenerator

PAPER_SIZE = {
    256: REPO / "egs2/ljspeech/tts1/conf/tuning/train_wavegan_vae.yaml",
    300: REPO / "egs2/aishell3/tts1/conf/tuning/train_wavegan_vae.yaml",
}
TINY = REPO / "egs2/ljspeech/tts1/conf/tuning/train_wavegan_vae_tiny.yaml"


def generator(path, **overrides):
    params = copy.deepcopy(yaml.safe_load(path.read_text())["tts_conf"]["generator_params"])
    params.update(overrides)
    torch.manual_seed(0)
    return WaveGANGenerator(**params)


def assert_equal_up_to_rounding(actual, expected):
    """Equal up to float32 rounding, which scales with the posterior (its mean varies by about 1)."""
    torch.testing.assert_close(actual, expected, atol=2e-5 * max(1.0, float(expected.abs().max())), rtol=0)


@pytest.fixture(scope="module", params=sorted(PAPER_SIZE), ids=lambda hop: f"hop{hop}")
def paper_generator(request):
    return generator(PAPER_SIZE[request.param]).eval()


def test_window_posterior_equals_whole_utterance_posterior(paper_generator):
    gen = paper_generator
    hop, size = gen.upsample_factor, gen.segment_size
    left, right = gen.encoder.receptive_margin()
    # Items: a segment in the middle, at the very start, at the very end, and an
    # utterance shorter than the segment; odd sample counts exercise the last frame.
    lengths = torch.tensor([hop * 90 + 77, hop * 70 + hop - 1, hop * 60 + 3, hop * (size - 9) + 11])
    frames = lengths // hop + 1
    starts = torch.tensor([40, 0, int(frames[2]) - size, 0])
    assert 0 < starts[0] - left and starts[0] + size + right < frames[0]  # a truly interior window
    torch.manual_seed(1)
    speech = torch.randn(4, int(lengths.max())) * 0.1
    with torch.no_grad():
        mean, log_std, mask = gen.segment_posterior(speech, lengths, starts)
        for b in range(4):
            whole_mean, whole_log_std, _ = gen.encoder(speech[b : b + 1, : lengths[b]], lengths[b : b + 1])
            n = min(size, int(frames[b] - starts[b]))
            cut = slice(int(starts[b]), int(starts[b]) + n)
            assert_equal_up_to_rounding(mean[b, :, :n], whole_mean[0, :, cut])
            assert_equal_up_to_rounding(log_std[b, :, :n], whole_log_std[0, :, cut])
            assert mask[b, 0].tolist() == [1.0] * n + [0.0] * (size - n)
            assert mean[b, :, n:].abs().sum() == 0


def test_receptive_margin_is_the_measured_dependence(paper_generator):
    """The margin is what the convolutions read: the gradient of one frame's posterior has that support."""
    encoder = copy.deepcopy(paper_generator.encoder).double()
    hop = encoder.hop_length
    frames, frame = 60, 30
    aligned = torch.randn(1, frames * hop, dtype=torch.float64, requires_grad=True)
    mean, log_std, _ = encoder.encode_aligned(aligned, torch.tensor([frames]))
    (mean[0, :, frame].sum() + log_std[0, :, frame].sum()).backward()
    support = torch.nonzero(aligned.grad[0]).view(-1)
    first, last = int(support.min()), int(support.max())
    assert 0 < first and last < frames * hop - 1, "the dependence must lie inside the test input"
    reads_left = -(-(frame * hop - first) // hop)  # frames before `frame` that hold samples it reads
    reads_right = (last // hop) - frame
    assert encoder.receptive_margin() == (reads_left, reads_right)


def test_padded_batch_encodes_each_item_as_alone(paper_generator):
    encoder = paper_generator.encoder
    hop = encoder.hop_length
    lengths = torch.tensor([hop * 50 + 200, hop * 31 + hop - 5, hop * 12])
    torch.manual_seed(2)
    speech = torch.randn(3, int(lengths.max())) * 0.1
    with torch.no_grad():
        mean, log_std, mask = encoder(speech, lengths)
        for b in range(3):
            alone_mean, alone_log_std, alone_mask = encoder(speech[b : b + 1, : lengths[b]], lengths[b : b + 1])
            n = alone_mean.size(-1)
            assert int(mask[b].sum()) == n and alone_mask.sum() == n
            assert_equal_up_to_rounding(mean[b, :, :n], alone_mean[0])
            assert_equal_up_to_rounding(log_std[b, :, :n], alone_log_std[0])


def test_window_and_whole_utterance_training_give_the_same_loss_and_gradients():
    hop = 256
    lengths = torch.tensor([hop * 60 + 100, hop * 40 + 7, hop * 10])
    torch.manual_seed(3)
    speech = torch.randn(3, int(lengths.max())) * 0.1
    starts = torch.tensor([20, 40 - 16 + 1, 0])  # middle, last possible start, shorter than the segment
    results = []
    for window in (True, False):
        gen = generator(TINY, encode_segment_window=window)
        torch.manual_seed(4)  # same posterior noise on the segment frames
        wav_hat, wav_real, _, mean, log_std, mask = gen(speech, lengths, start_frames=starts)
        loss = (wav_hat - wav_real).abs().mean() + (mean**2 + log_std.exp() ** 2 - 2 * log_std).mul(mask).mean()
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in gen.encoder.named_parameters()}))
    (loss_window, grads_window), (loss_whole, grads_whole) = results
    torch.testing.assert_close(loss_window, loss_whole, atol=1e-6, rtol=1e-5)
    for name, grad in grads_whole.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grads_window[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_decoded_segment_lines_up_with_the_real_audio():
    """A segment that does not cover the clip: decoded frames [s, s + S) against samples [s * hop, (s + S) * hop)."""
    gen = generator(TINY).eval()
    hop, size = gen.upsample_factor, gen.segment_size
    lengths = torch.tensor([hop * 50 + 31])
    torch.manual_seed(5)
    speech = torch.randn(1, int(lengths[0]))
    start = torch.tensor([21])
    with torch.no_grad():
        torch.manual_seed(6)
        wav_hat, wav_real, starts, mean, log_std, mask = gen(speech, lengths, start_frames=start)
        whole_mean, whole_log_std, _ = gen.encoder(speech, lengths)
        torch.manual_seed(6)
        eps = torch.randn_like(mean)
        z = whole_mean[:, :, 21 : 21 + size] + eps * whole_log_std[:, :, 21 : 21 + size].exp()
        torch.testing.assert_close(wav_hat, gen.decode(z), atol=1e-5, rtol=0)
    assert torch.equal(wav_real[0, 0], speech[0, 21 * hop : (21 + size) * hop])
    assert starts.tolist() == [21] and wav_hat.shape == wav_real.shape == (1, 1, size * hop)
