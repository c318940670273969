"""Flow prior: MAS durations, duration expansion, and maximum-likelihood training."""

import torch

from espnet2_glow_wavegan.glow.prior import (
    FlowPrior,
    durations_to_path,
    expand_by_durations,
    gaussian_log_likelihood_matrix,
)


def tiny_prior(**kw):
    torch.manual_seed(0)
    return FlowPrior(
        vocabs=20, latent_dim=16, text_encoder_conf=dict(attention_dim=32, blocks=2, linear_units=64),
        duration_predictor_conf=dict(n_chans=32), flow_conf=dict(blocks=2, hidden_channels=32, layers=2), **kw,
    )


def structured_batch():
    """Latents made of per-token constant segments (6 frames a token) plus noise."""
    torch.manual_seed(0)
    text = torch.randint(1, 20, (2, 10))
    text_lengths = torch.tensor([10, 8])
    z = torch.repeat_interleave(torch.randn(2, 16, 10), 6, dim=2) + 0.1 * torch.randn(2, 16, 60)
    z_lengths = torch.tensor([60, 47])  # odd: cut to 46 for the squeeze
    z[1, :, 47:] = 0
    return text, text_lengths, z, z_lengths


def test_log_likelihood_matrix_matches_direct_formula():
    torch.manual_seed(0)
    z, mean, log_std = torch.randn(2, 3, 5), torch.randn(2, 3, 4), torch.randn(2, 3, 4) * 0.3
    direct = torch.distributions.Normal(mean.unsqueeze(2), log_std.exp().unsqueeze(2)).log_prob(
        z.unsqueeze(3)
    ).sum(1)
    torch.testing.assert_close(gaussian_log_likelihood_matrix(z, mean, log_std), direct, atol=1e-4, rtol=1e-4)


def test_mas_durations_sum_to_latent_length():
    prior = tiny_prior()
    text, text_lengths, z, z_lengths = structured_batch()
    out = prior(text, text_lengths, z, z_lengths)
    assert out["z_lengths"].tolist() == [60, 46]
    assert out["durations"].sum(dim=1).tolist() == [60, 46]
    for b, n in enumerate(text_lengths.tolist()):
        assert (out["durations"][b, :n] >= 1).all() and (out["durations"][b, n:] == 0).all()
    # The path is monotonic and each frame belongs to exactly one token.
    path = out["path"][1, :46, :8]
    assert torch.equal(path.sum(dim=1), torch.ones(46))
    token = path.argmax(dim=1)
    assert (token[1:] >= token[:-1]).all()


def test_predicted_durations_expand_to_their_sum():
    prior = tiny_prior().eval()
    text, text_lengths, _, _ = structured_batch()
    with torch.no_grad():
        mean, log_std, log_dur, text_mask = prior.encode_text(text, text_lengths)
        durations = prior.predict_durations(log_dur, text_mask, length_scale=1.7)
        lengths = durations.sum(dim=1)
        frames = int(lengths.max())
        mean_y, log_std_y = (expand_by_durations(x, durations, frames) for x in (mean, log_std))
        z = prior.sample_aligned(mean_y, log_std_y, lengths, noise_scale=0.5)
        path = durations_to_path(durations, text_mask, frames)
    assert (durations[0] >= 1).all() and (durations[1, 8:] == 0).all()
    assert z.shape == (2, 16, frames) and torch.isfinite(z).all()
    assert torch.all(z[1, :, int(lengths[1]):] == 0)
    assert torch.equal(path.sum(dim=1).long(), durations)


def test_overfitting_a_batch_lowers_the_mle_loss():
    prior = tiny_prior()
    text, text_lengths, z, z_lengths = structured_batch()
    optim = torch.optim.Adam(prior.parameters(), lr=1e-3)
    losses = []
    for _ in range(150):
        out = prior(text, text_lengths, z, z_lengths)
        optim.zero_grad()
        (out["mle_loss"] + out["duration_loss"]).backward()
        optim.step()
        losses.append(out["mle_loss"].item())
    # Measured: ~1.3 -> ~-0.4 nats per latent dimension in 150 steps.
    assert losses[-1] < losses[0] - 1.0, (losses[0], losses[-1])


def test_mle_loss_value_is_the_gaussian_negative_log_likelihood_through_the_flow():
    """mle_loss = -(log N(f(z); mean_y, std_y) + log|det df/dz|) per latent dimension, computed directly."""
    for mean_only in (True, False):
        prior = tiny_prior(mean_only=mean_only).eval()  # eval: no dropout, so the flow below is the same map
        with torch.no_grad():
            prior.stats_proj.bias.normal_()  # a non-trivial prior (and log-std when learned)
            text, text_lengths, z, z_lengths = structured_batch()
            out = prior(text, text_lengths, z, z_lengths)
            frames = out["path"].size(1)
            mask = (torch.arange(frames)[None] < out["z_lengths"][:, None]).unsqueeze(1).float()
            z_p, logdet = prior.flow(z[:, :, :frames] * mask, mask)
            prior_y = torch.distributions.Normal(out["mean_y"], out["log_std_y"].exp())
            log_lik = (prior_y.log_prob(z_p) * mask).sum() + logdet.sum()
            expected = -log_lik / (mask.sum() * prior.latent_dim)
        assert out["log_std_y"].abs().sum() > 0 if not mean_only else out["log_std_y"].abs().sum() == 0
        torch.testing.assert_close(out["mle_loss"], expected, atol=1e-5, rtol=1e-5)


def test_learned_prior_std_trains():
    """mean_only: false predicts a log-std per token; the likelihood trains it."""
    prior = tiny_prior(mean_only=False)
    assert prior.stats_proj.out_channels == 2 * prior.latent_dim
    text, text_lengths, z, z_lengths = structured_batch()
    optim = torch.optim.Adam(prior.parameters(), lr=1e-3)
    losses = []
    for _ in range(60):
        out = prior(text, text_lengths, z, z_lengths)
        optim.zero_grad()
        out["mle_loss"].backward()
        assert prior.stats_proj.weight.grad[prior.latent_dim :].abs().sum() > 0  # the log-std rows learn
        optim.step()
        losses.append(out["mle_loss"].item())
    assert losses[-1] < losses[0] - 0.5, (losses[0], losses[-1])


def test_duration_predictor_reads_no_padding():
    """A 2-token item predicts the same log-durations alone and batched with a 9-token one.

    ESPnet's DurationPredictor masks only its output, so its convolutions read the
    batch's padding; here every convolution's input is masked, as in Glow-TTS.
    """
    prior = tiny_prior().eval()
    torch.manual_seed(0)
    h = torch.randn(2, 32, 9)  # text states; item 1's padding holds whatever the encoder left there
    mask = (torch.arange(9)[None] < torch.tensor([9, 2])[:, None]).unsqueeze(1).float()
    with torch.no_grad():
        batched = prior.log_durations(h, mask)
        alone = prior.log_durations(h[1:, :, :2], mask[1:, :, :2])
    torch.testing.assert_close(batched[1, :2], alone[0], atol=1e-6, rtol=0)
    assert torch.all(batched[1, 2:] == 0)


def test_duration_loss_trains_the_speaker_and_the_prior_mean_ignores_it():
    """Glow-TTS: the speaker enters the duration predictor beside the detached text states (so the
    duration loss trains the speaker embedding), and the prior's statistics do not see the speaker."""
    prior = tiny_prior(spks=3, global_channels=8)
    text, text_lengths, _, _ = structured_batch()
    mean, _, log_dur, text_mask = prior.encode_text(text, text_lengths, prior.speaker(torch.tensor([1, 2])))
    ((log_dur - 1.0) ** 2 * text_mask.squeeze(1)).sum().backward()
    assert prior.speaker.global_emb.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in prior.text_encoder.parameters())  # detached text states
    prior.eval()  # no dropout: the two speakers' outputs can be compared
    with torch.no_grad():
        one = prior.encode_text(text, text_lengths, prior.speaker(torch.tensor([1, 2])))
        other = prior.encode_text(text, text_lengths, prior.speaker(torch.tensor([2, 0])))
    assert torch.equal(one[0], other[0]) and not torch.equal(one[2], other[2])


def test_sampling_an_utterance_does_not_depend_on_its_batch():
    """An odd-length utterance's last frame pairs with a padding frame in the flow's squeeze; that
    frame is zero whether the padding is the batch's or the utterance's own."""
    prior = tiny_prior().eval()
    torch.manual_seed(1)
    mean_y, log_std_y, noise = torch.randn(2, 16, 11), 0.1 * torch.randn(2, 16, 11), torch.randn(2, 16, 11)
    lengths = torch.tensor([11, 7])
    with torch.no_grad():
        batched = prior.sample_aligned(mean_y, log_std_y, lengths, noise=noise)
        single = prior.sample_aligned(mean_y[1:, :, :7], log_std_y[1:, :, :7], lengths[1:], noise=noise[1:, :, :7])
    torch.testing.assert_close(batched[1, :, :7], single[0], atol=1e-5, rtol=0)
    assert torch.all(batched[1, :, 7:] == 0)


def test_expanding_by_durations_is_the_alignment_product():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 7)
    durations = torch.tensor([[1, 0, 3, 2, 1, 1, 2], [2, 2, 1, 0, 0, 0, 0]])
    text_mask = (durations.new_tensor([[1] * 7, [1, 1, 1, 0, 0, 0, 0]])).unsqueeze(1).float()
    path = durations_to_path(durations, text_mask, 10)
    torch.testing.assert_close(expand_by_durations(x * text_mask, durations, 10), torch.matmul(path, (x * text_mask).transpose(1, 2)).transpose(1, 2))
