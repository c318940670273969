"""Waveform encoder: raw waveform -> per-frame posterior q(z|x) at the hop rate."""

from typing import Any, Dict, List, Tuple

import torch
import torch.nn.functional as F
from espnet2.gan_tts.hifigan.residual_block import ResidualBlock
from typeguard import typechecked

from espnet2_glow_wavegan.utils import frame_mask


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
    ):
        """Initialize WaveformEncoder.

        Args:
            latent_dim: Channels of z (the output has 2 * latent_dim: mean, log-std).
            channels: Channels after the input convolution.
            max_channels: Upper bound of the channel doubling.
            kernel_size: Kernel of the input and output convolutions (odd).
            downsample_scales: Strides of the stages; their product is the hop.
            resblock_kernel_size: Kernel of the dilated residual convolutions (odd).
            resblock_dilations: Dilations of one residual block in every stage.
            nonlinear_activation: Activation module name in ``torch.nn``.
            nonlinear_activation_params: Its keyword arguments.
            use_weight_norm: Apply weight normalisation to every convolution.
        """
        super().__init__()
        self.latent_dim = latent_dim
        self.hop_length = 1
        for scale in downsample_scales:
            self.hop_length *= scale
        self.input_conv = torch.nn.Conv1d(1, channels, kernel_size, padding=kernel_size // 2)
        self.stages = torch.nn.ModuleList()
        self.downsample_paddings = []
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

    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compute the posterior statistics.

        Args:
            speech: Waveform (B, T_wav).
            speech_lengths: Valid samples per item (B,).

        Returns:
            Tensor: Mean (B, latent_dim, T_frames), T_frames = T_wav // hop + 1.
            Tensor: Log standard deviation (B, latent_dim, T_frames).
            Tensor: Frame mask (B, 1, T_frames), 1 on valid frames.
        """
        hop = self.hop_length
        frames = int(num_frames(torch.tensor(speech.size(1)), hop))
        frame_lengths = num_frames(speech_lengths, hop)
        # Zero the padding of shorter items, centre frame i on sample i * hop.
        sample_mask = torch.arange(speech.size(1), device=speech.device)[None] < speech_lengths[:, None]
        x = (speech * sample_mask).unsqueeze(1)
        x = F.pad(x, (hop // 2, frames * hop - speech.size(1) - hop // 2))
        x = self.input_conv(x)
        for stage in self.stages:
            x = stage(x)
        stats = self.output_conv(x)
        mask = frame_mask(frame_lengths, frames, stats.dtype)
        mean, log_std = (stats * mask).split(self.latent_dim, dim=1)
        return mean, log_std, mask

    def remove_weight_norm(self):
        """Fold weight normalisation into the weights (for inference)."""

        def _remove(m):
            try:
                torch.nn.utils.remove_weight_norm(m)
            except ValueError:
                pass

        self.apply(_remove)


def _apply_weight_norm(m: torch.nn.Module):
    if isinstance(m, torch.nn.Conv1d):
        torch.nn.utils.weight_norm(m)
