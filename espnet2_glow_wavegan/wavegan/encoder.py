"""Waveform encoder: raw waveform -> per-frame posterior q(z|x) at the hop rate."""

from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from espnet2.gan_tts.hifigan.residual_block import ResidualBlock
from typeguard import typechecked

from espnet2_glow_wavegan.utils import frame_mask


# The probe of initialise_posterior_conv: white noise at the RMS of read speech
# (about -20 dBFS), long enough to span the encoder's receptive field several times.
PROBE_RMS = 0.1
PROBE_FRAMES = 64


def num_frames(num_samples: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Frames of a centred STFT, which is what ESPnet's feature extractors produce.

    Frame ``i`` is centred on sample ``i * hop_length``, so a waveform of ``T``
    samples has ``T // hop_length + 1`` frames (same as ``LogMelFbank`` and
    ``LinearSpectrogram`` with ``center=True``). Latents and text alignments use
    this count, so they line up with ESPnet's mel frames for the same audio.
    """
    return torch.div(num_samples, hop_length, rounding_mode="floor") + 1


class WaveformEncoder(torch.nn.Module):
    """Strided convolutional encoder to a diagonal Gaussian posterior.

    Each downsampling stage is a stack of dilated residual blocks followed by a
    strided convolution with kernel ``2 * stride`` that widens the channels
    (doubling, capped at ``max_channels``). The strides multiply to the hop, so
    the output runs at the mel frame rate; a last convolution gives the mean and
    log standard deviation of ``latent_dim`` channels.
    """

    deterministic = False  # q(z|x) is a Gaussian: sampled in training, regularised by the KL term
    initialisation_settings = ("initial_mean_std", "initial_log_std")  # not in the architecture record

    @typechecked
    def __init__(
        self,
        latent_dim: int = 128,
        channels: int = 32,
        max_channels: int = 512,
        kernel_size: int = 7,
        downsample_scales: List[int] = [2, 2, 8, 8],
        resblock_kernel_size: int = 3,
        resblock_dilations: List[int] = [1, 3, 9],
        nonlinear_activation: str = "LeakyReLU",
        nonlinear_activation_params: Dict[str, Any] = {"negative_slope": 0.1},
        use_weight_norm: bool = True,
        initial_mean_std: Optional[float] = None,
        initial_log_std: Optional[float] = None,
    ):
        """Initialize WaveformEncoder.

        Args:
            latent_dim: Channels of z (set by the WaveGAN; the output has 2 * latent_dim: mean, log-std).
            channels: Channels after the input convolution.
            max_channels: Upper bound of the channel doubling.
            kernel_size: Kernel of the input and output convolutions (odd).
            downsample_scales: Strides of the stages; their product is the hop.
            resblock_kernel_size: Kernel of the dilated residual convolutions (odd).
            resblock_dilations: Dilations of one residual block in every stage.
            nonlinear_activation: Activation module name in ``torch.nn``.
            nonlinear_activation_params: Its keyword arguments.
            use_weight_norm: Apply weight normalisation to every convolution.
            initial_mean_std: Scale of the posterior mean at initialisation (its standard deviation
                over time on a speech-level probe, see :func:`initialise_posterior_conv`); None: PyTorch's
                default initialisation, under which the mean is hundreds of times smaller than
                the sampling noise.
            initial_log_std: Log standard deviation of the posterior at initialisation; None: about 0.
        """
        super().__init__()
        self.latent_dim = latent_dim
        self.downsample_scales = list(downsample_scales)
        self.hop_length = 1
        for scale in downsample_scales:
            self.hop_length *= scale
        self.input_conv = torch.nn.Conv1d(1, channels, kernel_size, padding=kernel_size // 2)
        self.stages = torch.nn.ModuleList()
        in_channels = channels
        for scale in downsample_scales:
            out_channels = min(in_channels * 2, max_channels)
            self.stages.append(
                torch.nn.Sequential(
                    ResidualBlock(
                        kernel_size=resblock_kernel_size,
                        channels=in_channels,
                        dilations=resblock_dilations,
                        use_additional_convs=True,
                        nonlinear_activation=nonlinear_activation,
                        nonlinear_activation_params=nonlinear_activation_params,
                    ),
                    getattr(torch.nn, nonlinear_activation)(**nonlinear_activation_params),
                    # Kernel 2*stride with (stride // 2, stride - stride // 2) padding
                    # maps L samples to exactly L / stride, for odd strides too.
                    torch.nn.ConstantPad1d((scale // 2, scale - scale // 2), 0.0),
                    torch.nn.Conv1d(in_channels, out_channels, 2 * scale, stride=scale),
                )
            )
            in_channels = out_channels
        self.output_conv = torch.nn.Sequential(
            getattr(torch.nn, nonlinear_activation)(**nonlinear_activation_params),
            torch.nn.Conv1d(in_channels, 2 * latent_dim, kernel_size, padding=kernel_size // 2),
        )
        if use_weight_norm:
            self.apply(_apply_weight_norm)
        initialise_posterior_conv(self, self.output_conv[-1], initial_mean_std, initial_log_std)

    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compute the posterior statistics of whole waveforms.

        Each item is encoded exactly as it would be alone: the batch padding never
        reaches its frames (see :meth:`encode_aligned`).

        Args:
            speech: Waveform (B, T_wav).
            speech_lengths: Valid samples per item (B,).

        Returns:
            Tensor: Mean (B, latent_dim, T_frames), T_frames = T_wav // hop + 1.
            Tensor: Log standard deviation (B, latent_dim, T_frames).
            Tensor: Frame mask (B, 1, T_frames), 1 on valid frames.
        """
        return self.encode_aligned(*self.frame_aligned(speech, speech_lengths))

    def frame_aligned(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pad waveforms so that frame ``i`` owns samples ``[i * hop, (i + 1) * hop)``.

        Frame ``i`` is centred on waveform sample ``i * hop``: ``hop // 2`` zeros go in
        front, and zeros replace everything past each item's length.

        Args:
            speech: Waveform (B, T_wav).
            speech_lengths: Valid samples per item (B,).

        Returns:
            Tensor: Frame-aligned waveform (B, T_frames * hop).
            Tensor: Frames per item (B,).
        """
        hop = self.hop_length
        frames = speech.size(1) // hop + 1  # num_frames of the padded length
        sample_mask = torch.arange(speech.size(1), device=speech.device)[None] < speech_lengths[:, None]
        aligned = F.pad(speech * sample_mask, (hop // 2, frames * hop - speech.size(1) - hop // 2))
        return aligned, num_frames(speech_lengths, hop)

    def encode_aligned(
        self, aligned: torch.Tensor, frame_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior statistics of frame-aligned waveforms (see :meth:`frame_aligned`).

        Every item is masked before the first and after every convolution, so each
        convolution sees zeros past an item's last frame, as it would with the item alone
        (a mask of ones where the item fills the batch: the same result, and no need to
        read the lengths back to the host to tell).

        Args:
            aligned: (B, T_frames * hop); item ``b`` holds ``frame_lengths[b] * hop`` samples.
            frame_lengths: (B,).

        Returns:
            Tensor: Mean (B, latent_dim, T_frames).
            Tensor: Log standard deviation (B, latent_dim, T_frames).
            Tensor: Frame mask (B, 1, T_frames).
        """
        frames = aligned.size(1) // self.hop_length
        frame_valid = frame_mask(frame_lengths, frames, aligned.dtype)
        mask = frame_valid.repeat_interleave(self.hop_length, -1)  # at the current rate
        x = self.input_conv(aligned.unsqueeze(1) * mask) * mask
        for stage, scale in zip(self.stages, self.downsample_scales):
            resblock, activation, pad, downsample = stage
            for first, second in zip(resblock.convs1, resblock.convs2):
                x = x + second(first(x) * mask) * mask
            mask = mask[:, :, ::scale]
            x = downsample(pad(activation(x))) * mask
        stats = self.output_conv(x) * frame_valid
        mean, log_std = stats.split(self.latent_dim, dim=1)
        return mean, log_std, frame_valid

    def receptive_margin(self) -> Tuple[int, int]:
        """Frames of context on each side that the posterior of a frame depends on.

        Walks the convolutions in the order :meth:`encode_aligned` runs them: a conv of
        kernel k, dilation d, stride s and left padding p, behind layers that map output
        ``j`` to input ``[j * R - A, j * R + B]``, maps to ``[j * sR - (A + pR),
        j * sR + (B + (d (k - 1) - p) R)]``. Residual branches add nothing (the skip path
        lies inside the conv path). Frame ``i`` owns aligned samples ``[i * hop, (i + 1) * hop)``,
        so ``ceil(A / hop)`` frames on the left and ``floor(B / hop)`` on the right cover
        everything it reads.

        Returns:
            Tuple[int, int]: (left, right) margin in frames.
        """
        rate, left, right = 1, 0, 0
        for conv, extra_left in self._convs_in_order():
            kernel, dilation, stride = conv.kernel_size[0], conv.dilation[0], conv.stride[0]
            pad_left = conv.padding[0] + extra_left
            left += pad_left * rate
            right += (dilation * (kernel - 1) - pad_left) * rate
            rate *= stride
        hop = self.hop_length
        return -(-left // hop), max(0, right // hop)

    def _convs_in_order(self):
        yield self.input_conv, 0
        for resblock, _, pad, downsample in self.stages:
            for first, second in zip(resblock.convs1, resblock.convs2):
                yield first[-1], 0
                yield second[-1], 0
            yield downsample, pad.padding[0]
        yield self.output_conv[-1], 0

    def remove_weight_norm(self):
        """Fold weight normalisation into the weights (for inference)."""

        def _remove(m):
            try:
                torch.nn.utils.remove_weight_norm(m)
            except ValueError:
                pass

        self.apply(_remove)


@torch.no_grad()
def initialise_posterior_conv(encoder, conv: torch.nn.Conv1d, mean_std: Optional[float], log_std: Optional[float]) -> None:
    """Start an encoder's training with a latent that the decoder can read.

    With PyTorch's default initialisation every convolution shrinks its input, so the
    posterior mean of speech varies by about 0.002 while the sampled noise has a standard
    deviation of 1: z is noise, the decoder learns to ignore it, and the KL term pulls the
    unused posterior onto the prior (Adam moves a weight by about the learning rate per
    step, too slowly to grow the mean 500-fold in a short training). This rescales the
    mean's half of ``conv``, the encoder's output convolution (mean channels first, then
    log-std), so that on a fixed noise probe at speech level every mean channel varies by
    ``mean_std`` around 0, and sets the log-std half's bias to ``log_std``. Only the initial
    weights change (a trained checkpoint loads as before); the probe is seeded, so every
    process builds the same weights from the same seed.
    """
    latent_dim = encoder.latent_dim
    if mean_std is not None:
        generator = torch.Generator().manual_seed(0)
        probe = PROBE_RMS * torch.randn(1, PROBE_FRAMES * encoder.hop_length, generator=generator)
        lengths = torch.tensor([probe.size(1)])
        mean, _, _ = encoder(probe, lengths)
        gain = mean_std / mean[0].std(dim=-1).clamp(min=1e-12)  # (latent_dim,)
        weight = conv.weight_g if hasattr(conv, "weight_g") else conv.weight
        weight[:latent_dim] *= gain.view(-1, 1, 1)
        conv.bias[:latent_dim] *= gain
        mean, _, _ = encoder(probe, lengths)
        conv.bias[:latent_dim] -= mean[0].mean(dim=-1)
    if log_std is not None:
        conv.bias[latent_dim:] = log_std


def _apply_weight_norm(m: torch.nn.Module):
    if isinstance(m, torch.nn.Conv1d):
        torch.nn.utils.weight_norm(m)
