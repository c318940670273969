"""Glow-TTS prior p(z | text): text encoder, duration predictor, MAS, and the flow."""

import math
from typing import Any, Dict, Optional, Tuple

import torch
from espnet.nets.pytorch_backend.fastspeech.duration_predictor import (
    DurationPredictor,
    DurationPredictorLoss,
)
from espnet2.gan_tts.vits.monotonic_align import maximum_path
from espnet2.gan_tts.vits.text_encoder import TextEncoder
from typeguard import typechecked

from espnet2_glow_wavegan.espnet_patches import padding_zeroed_at_convolutions
from espnet2_glow_wavegan.glow.flow import GlowFlow
from espnet2_glow_wavegan.speaker import SpeakerCondition
from espnet2_glow_wavegan.synthesis.plan import folded, text_windowed
from espnet2_glow_wavegan.utils import float32, frame_mask

LOG_2PI = math.log(2 * math.pi)
# Glow-TTS' duration predictor (ESPnet's defaults are FastSpeech's 384 channels).
GLOW_TTS_DURATION_PREDICTOR = {"n_layers": 2, "n_chans": 256, "kernel_size": 3, "dropout_rate": 0.1}


def gaussian_log_likelihood_matrix(
    z: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
) -> torch.Tensor:
    """log N(z_t; mean_j, std_j) summed over channels, for every frame t and token j.

    Args:
        z: (B, C, T_feats).
        mean: (B, C, T_text).
        log_std: (B, C, T_text).

    Returns:
        Tensor: (B, T_feats, T_text).
    """
    inv_var = torch.exp(-2.0 * log_std)  # (B, C, T_text)
    const = torch.sum(-0.5 * LOG_2PI - log_std - 0.5 * mean**2 * inv_var, dim=1)  # (B, T_text)
    quad = torch.matmul((-0.5 * z**2).transpose(1, 2), inv_var)  # (B, T_feats, T_text)
    cross = torch.matmul(z.transpose(1, 2), mean * inv_var)
    return quad + cross + const.unsqueeze(1)


def durations_to_path(durations: torch.Tensor, text_mask: torch.Tensor, frames: int) -> torch.Tensor:
    """Hard monotonic alignment (B, frames, T_text) from integer durations (B, T_text)."""
    ends = torch.cumsum(durations * text_mask.squeeze(1).long(), dim=1)  # (B, T_text)
    starts = ends - durations
    t = torch.arange(frames, device=durations.device).view(1, -1, 1)
    return ((t >= starts.unsqueeze(1)) & (t < ends.unsqueeze(1))).float()


def gaussian_sample(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor, noise_scale: float) -> torch.Tensor:
    """``N(mean, (noise_scale * std)^2)`` from the standard-normal draw ``noise`` (all (B, C, T))."""
    return mean + noise * torch.exp(log_std) * noise_scale


def expand_by_durations(x: torch.Tensor, durations: torch.Tensor, frames: int) -> torch.Tensor:
    """Repeat token ``j`` of ``x`` (B, C, T_text) ``durations[b, j]`` times: (B, C, frames), zero-padded.

    One gather: frame ``t`` reads the token whose cumulative duration first exceeds ``t``
    (linear in the output length, no per-item loop, no host synchronisation).
    """
    ends = torch.cumsum(durations, dim=1)  # (B, T_text)
    t = torch.arange(frames, device=x.device).expand(x.size(0), -1).contiguous()
    token = torch.searchsorted(ends, t, right=True)  # (B, frames)
    inside = token < x.size(2)
    index = torch.where(inside, token, torch.zeros_like(token)).unsqueeze(1).expand(-1, x.size(1), -1)
    return torch.gather(x, 2, index) * inside.unsqueeze(1).to(x.dtype)


class FlowPrior(torch.nn.Module):
    """Glow-TTS acoustic model over the WaveGAN latent z (B, latent_dim, T_feats).

    Training (``forward``) is exact maximum likelihood: the flow maps z to the
    prior space, MAS finds the most likely monotonic alignment to the per-token
    Gaussians, and the duration predictor learns the MAS durations. Synthesis
    (``inference``) samples the aligned Gaussians and inverts the flow.
    """

    @typechecked
    def __init__(
        self,
        vocabs: int,
        latent_dim: int = 128,
        text_encoder_conf: Dict[str, Any] = {},
        duration_predictor_conf: Dict[str, Any] = {},
        flow_conf: Dict[str, Any] = {},
        mean_only: bool = True,
        spks: Optional[int] = None,
        spk_embed_dim: Optional[int] = None,
        global_channels: int = -1,
        synthesis_window_tokens: int = 512,
        synthesis_window_context: int = 64,
    ):
        """Initialize FlowPrior.

        Args:
            vocabs: Token vocabulary size.
            latent_dim: Channels of z (set by the WaveGAN).
            text_encoder_conf: ESPnet ``TextEncoder`` arguments (``attention_dim``, ``attention_heads``,
                ``linear_units``, ``blocks``, ...); unset ones take ESPnet's defaults, which are
                Glow-TTS' base model (hidden 192, 2 heads, FFN 768, 6 blocks, relative attention).
            duration_predictor_conf: ESPnet ``DurationPredictor`` arguments (``n_layers``,
                ``n_chans``, ``kernel_size``, ``dropout_rate``); unset ones take Glow-TTS' (2 x 256,
                kernel 3, dropout 0.1).
            flow_conf: :class:`GlowFlow` arguments (``blocks``, ``hidden_channels``, ...).
            mean_only: Predict only the prior mean (log-std 0), as Glow-TTS' base model.
            spks: Speaker id table size (``sids``), or None.
            spk_embed_dim: External speaker embedding size (``spembs``), or None.
            global_channels: Speaker condition channels (> 0 when a speaker input is set).
            synthesis_window_tokens: At synthesis (eval mode, one utterance), a text longer
                than this plus twice the context is encoded in windows of this many tokens,
                so that the self-attention stays linear in a paragraph's length.
            synthesis_window_context: Tokens of context each window sees on each side.
        """
        super().__init__()
        self.latent_dim = latent_dim
        self.mean_only = mean_only
        self.speaker = SpeakerCondition(spks, spk_embed_dim, global_channels)
        self.synthesis_window_tokens = synthesis_window_tokens
        self.synthesis_window_context = synthesis_window_context
        self.spks = self.speaker.spks
        self.spk_embed_dim = self.speaker.spk_embed_dim
        self.text_encoder = TextEncoder(vocabs=vocabs, **text_encoder_conf)
        hidden = self.text_encoder.attention_dim
        # TextEncoder's own projection assumes latent size == hidden size; ours
        # comes after the speaker condition is added, so the encoder returns hidden states.
        self.text_encoder.proj = torch.nn.Identity()
        self.stats_proj = torch.nn.Conv1d(hidden, latent_dim * (1 if mean_only else 2), 1)
        # As Glow-TTS: the duration predictor reads the (detached) text states and the
        # speaker condition side by side; the prior's statistics do not see the speaker.
        self.duration_predictor = DurationPredictor(
            idim=hidden + max(self.speaker.channels, 0), **{**GLOW_TTS_DURATION_PREDICTOR, **duration_predictor_conf}
        )
        self.duration_loss = DurationPredictorLoss()
        self.flow = GlowFlow(channels=latent_dim, global_channels=self.speaker.channels, **flow_conf)
        self.squeeze_factor = self.flow.squeeze_factor

    def encode_text(
        self, text: torch.Tensor, text_lengths: torch.Tensor, g: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Text -> per-token prior statistics and log durations.

        Returns:
            Tensor: Prior mean (B, latent_dim, T_text).
            Tensor: Prior log-std (B, latent_dim, T_text).
            Tensor: Predicted log(duration + 1) (B, T_text), 0 on padding.
            Tensor: Text mask (B, 1, T_text).
        """
        h, text_mask = self.text_states(text, text_lengths)
        return (*self.token_statistics(h, text_mask, g), text_mask)

    def token_statistics(
        self, h: torch.Tensor, text_mask: torch.Tensor, g: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Text encoder states (B, hidden, T_text) -> prior mean, log-std (B, latent_dim, T_text), log durations (B, T_text)."""
        stats = self.stats_proj(h).float() * text_mask  # the Gaussians' statistics in float32 under autocast
        if self.mean_only:
            mean, log_std = stats, torch.zeros_like(stats)
        else:
            mean, log_std = stats.chunk(2, dim=1)
        return mean, log_std, self.log_durations(h, text_mask, g)

    def text_states(self, text: torch.Tensor, text_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Text encoder states (B, hidden, T_text) and mask (B, 1, T_text) of whole texts, as in training.

        The encoder's self-attention is quadratic in the text length: synthesis encodes a
        paragraph in windows of ``synthesis_window_tokens`` with ``synthesis_window_context``
        tokens of context on each side (``synthesis/engine.py``; the attention is relative, so a
        window is encoded as if it began the text).
        """
        text_mask = frame_mask(text_lengths, text.size(1))
        return self._encode(text, text_mask), text_mask

    def windowed(self, tokens: int) -> bool:
        """Whether synthesis encodes a text of ``tokens`` tokens in windows (longer than a window and its contexts)."""
        return text_windowed(tokens, self.synthesis_window_tokens, self.synthesis_window_context)

    def _encode(self, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """ESPnet's ``TextEncoder.forward`` up to its hidden states (B, hidden, T_text), with our mask.

        Its own mask comes from ``make_non_pad_mask(lengths)``, which reads the lengths back
        to the host; the rest is its embedding and its encoder stack, called as it calls them.
        Its feed-forward convolutions do not mask their inputs, so in a padded batch the last
        tokens of a shorter text would read the padding's activations: they read zeros, as
        the text alone does (a padded batch encodes each text as it is encoded alone).
        """
        encoder = self.text_encoder
        x = encoder.emb(text) * math.sqrt(encoder.attention_dim)
        if text.size(0) == 1:  # nothing is padded
            h, _ = encoder.encoder(x, text_mask.to(x.dtype))
        else:
            with padding_zeroed_at_convolutions(encoder.encoder, text_mask):
                h, _ = encoder.encoder(x, text_mask.to(x.dtype))
        return h.transpose(1, 2)

    def log_durations(self, h: torch.Tensor, text_mask: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        """log(duration + 1) per token (B, T_text), 0 on padding, as Glow-TTS predicts it.

        The text states are detached (the duration loss does not train the text encoder),
        the speaker condition is not (it trains the speaker embedding too), and the input
        of every convolution is masked, so a token never sees the batch's padding. ESPnet's
        ``DurationPredictor`` masks only its output; its layers are run one by one here.
        """
        x = h.detach()
        if g is not None:
            x = torch.cat([x, g.expand(-1, -1, x.size(2))], dim=1)
        for layer in self.duration_predictor.conv:  # Conv1d, ReLU, LayerNorm, Dropout
            x = layer(x * text_mask)
        log_dur = self.duration_predictor.linear((x * text_mask).transpose(1, 2)).squeeze(-1).float()
        return log_dur * text_mask.squeeze(1)

    def forward(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        z: torch.Tensor,
        z_lengths: torch.Tensor,
        g: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Negative log-likelihood of z given the text, and the duration loss.

        Args:
            text: Token ids (B, T_text).
            text_lengths: (B,).
            z: Target latent (B, latent_dim, T_feats).
            z_lengths: Valid frames (B,).
            g: Speaker condition (B, global_channels, 1) or None.

        Returns:
            Dict[str, Tensor]: ``mle_loss`` (per latent dimension, nats), ``duration_loss``,
            ``durations`` (B, T_text), ``path`` (B, T_feats', T_text), ``z_lengths`` (B,);
            T_feats' and z_lengths are cut to a multiple of the flow's squeeze factor.
        """
        f = self.squeeze_factor
        frames = (z.size(2) // f) * f
        z_lengths = torch.div(z_lengths, f, rounding_mode="floor") * f
        z = z[:, :, :frames].float()  # the flow's state is float32 under autocast
        z_mask = frame_mask(z_lengths, frames, z.dtype)
        mean, log_std, log_dur, text_mask = self.encode_text(text, text_lengths, g)
        z_p, logdet = self.flow(z * z_mask, z_mask, g=g)
        with float32(z.device.type):
            with torch.no_grad():
                attn_mask = z_mask.transpose(1, 2) * text_mask  # (B, T_feats, T_text)
                log_lik = gaussian_log_likelihood_matrix(z_p, mean, log_std)
                path = maximum_path(log_lik, attn_mask)  # ESPnet's MAS (numba, on the CPU as VITS')
            mean_y = torch.matmul(path, mean.transpose(1, 2)).transpose(1, 2)  # (B, C, T_feats)
            log_std_y = torch.matmul(path, log_std.transpose(1, 2)).transpose(1, 2)
            nll = torch.sum(log_std_y * z_mask) + 0.5 * torch.sum(
                torch.exp(-2.0 * log_std_y) * (z_p - mean_y) ** 2 * z_mask
            )
            nll = nll - torch.sum(logdet)
            mle_loss = nll / (torch.sum(z_mask) * self.latent_dim) + 0.5 * LOG_2PI
            durations = path.sum(dim=1).long()  # (B, T_text)
            duration_loss = self.masked_duration_loss(log_dur, durations, text_mask)
        return dict(
            mle_loss=mle_loss,
            duration_loss=duration_loss,
            durations=durations,
            path=path,
            z_lengths=z_lengths,
            mean_y=mean_y,
            log_std_y=log_std_y,
        )

    def masked_duration_loss(self, log_dur: torch.Tensor, durations: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """ESPnet's ``DurationPredictorLoss`` (MSE on log(duration + offset)) over the valid tokens.

        The same mean as selecting the valid tokens first, without the selection's
        data-dependent shape (which reads the mask back to the host).
        """
        loss = self.duration_loss
        valid = text_mask.squeeze(1)
        targets = torch.log(durations.float() + loss.offset)
        return torch.sum((log_dur - targets) ** 2 * valid) / valid.sum().clamp(min=1)

    def predict_durations(self, log_dur: torch.Tensor, text_mask: torch.Tensor, length_scale: float) -> torch.Tensor:
        """Integer durations (B, T_text): ceil((exp(log_dur) - 1) * length_scale), at least 1 frame.

        MAS gives every token at least one frame, so the predictor is trained on
        durations >= 1; the floor keeps that at synthesis.
        """
        durations = torch.ceil((torch.exp(log_dur) - self.duration_predictor.offset) * length_scale)
        return (durations.clamp(min=1) * text_mask.squeeze(1)).long()

    def sample_aligned(
        self,
        mean_y: torch.Tensor,
        log_std_y: torch.Tensor,
        lengths: torch.Tensor,
        g: Optional[torch.Tensor] = None,
        noise_scale: float = 0.667,
        noise: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Sample the frame-aligned prior N(mean_y, (noise_scale * std_y)^2) and invert the flow.

        The flow folds frames in groups of ``squeeze_factor``: the frames are padded to
        the fold, and the prior sample is zero past each item's length, so that an
        utterance's latent does not depend on the batch it is sampled in.

        Args:
            mean_y: Prior mean per frame (B, latent_dim, T_feats).
            log_std_y: Prior log-std per frame (B, latent_dim, T_feats).
            lengths: Valid frames (B,).
            g: Speaker condition (B, global_channels, 1) or None.
            noise_scale: Temperature (0: the mean).
            noise: The standard-normal draw (B, latent_dim, T_feats) to use; drawn here if None.

        Returns:
            Tensor: z (B, latent_dim, T_feats), zero past each length.
        """
        z_p, z_mask, flow_mask = self.prior_sample(mean_y, log_std_y, lengths, noise_scale, noise)
        z, _ = self.flow(z_p, flow_mask, g=g, reverse=True)
        return (z * z_mask)[:, :, : mean_y.size(2)]

    def prior_sample(
        self,
        mean_y: torch.Tensor,
        log_std_y: torch.Tensor,
        lengths: torch.Tensor,
        noise_scale: float = 0.667,
        noise: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The flow's input for :meth:`sample_aligned`: the prior sample, padded to the flow's fold.

        Returns:
            Tensor: z_p (B, latent_dim, T_padded), zero past each length.
            Tensor: Latent frame mask (B, 1, T_padded).
            Tensor: The flow's mask (B, 1, T_padded): each length rounded up to the fold.
        """
        frames, f = mean_y.size(2), self.squeeze_factor
        padded = folded(frames, f)
        z_mask = frame_mask(lengths, padded, mean_y.dtype)
        noise = torch.randn_like(mean_y) if noise is None else noise
        z_p = torch.nn.functional.pad(gaussian_sample(mean_y, log_std_y, noise, noise_scale), (0, padded - frames))
        flow_mask = frame_mask(-torch.div(-lengths, f, rounding_mode="floor") * f, padded, mean_y.dtype)
        return z_p * z_mask, z_mask, flow_mask
