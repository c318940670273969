"""Frame-rate WaveGAN decoder: a ConvNeXt backbone predicts STFT frames, an inverse STFT makes the waveform.

Vocos (Siuzdak, 2023) decodes at the frame rate with ConvNeXt blocks and leaves the
upsampling to an inverse STFT, about an order of magnitude fewer operations per second
of audio than HiFi-GAN V1's transposed-conv stack. Glow-WaveGAN learns its own latent,
so the decoder is free to be such a network: the flow prior only ever sees z.

The backbone and the head are the ``vocos`` package's own ``VocosBackbone`` and
``ISTFTHead`` (``padding="same"``: ``T_frames * hop`` samples out, frame ``i`` on samples
``[i * hop, (i + 1) * hop)``, the HiFi-GAN decoder's convention, so training segments
line up with the real audio the same way). Speaker conditioning adds a projection of
the global condition to the latent, as HiFi-GAN's ``global_conv`` adds it after its
input convolution.
"""

import torch

from espnet2_glow_wavegan.utils import float32


class ISTFTDecoder(torch.nn.Module):
    """z (B, latent_dim, T_frames) -> waveform (B, 1, T_frames * hop)."""

    def __init__(
        self,
        in_channels: int,
        hop_length: int,
        channels: int = 512,
        intermediate_channels: int = 1536,
        layers: int = 8,
        n_fft: int = 1024,
        global_channels: int = -1,
    ):
        """Initialize ISTFTDecoder.

        Args:
            in_channels: Latent channels.
            hop_length: Samples per frame (the encoder's total stride).
            channels: ConvNeXt width.
            intermediate_channels: ConvNeXt inverted-bottleneck width.
            layers: ConvNeXt blocks.
            n_fft: FFT size = window length of the inverse STFT (Vocos: 4 x hop).
            global_channels: Channels of the speaker condition g (-1: none).
        """
        super().__init__()
        from vocos.heads import ISTFTHead
        from vocos.models import VocosBackbone

        if (n_fft - hop_length) % 2:
            raise ValueError(f"n_fft - hop must be even for 'same' padding, got n_fft {n_fft}, hop {hop_length}")
        self.hop_length = hop_length
        self.n_fft = n_fft
        self.backbone = VocosBackbone(
            input_channels=in_channels, dim=channels, intermediate_dim=intermediate_channels, num_layers=layers
        )
        self.head = ISTFTHead(dim=channels, n_fft=n_fft, hop_length=hop_length, padding="same")
        if global_channels > 0:
            self.global_conv = torch.nn.Conv1d(global_channels, in_channels, 1)

    def forward(self, c: torch.Tensor, g: torch.Tensor = None) -> torch.Tensor:
        """Args: c (B, in_channels, T_frames); g (B, global_channels, 1) or None. Returns (B, 1, T_frames * hop)."""
        if g is not None:
            c = c + self.global_conv(g)
        # Synthesis may cast the backbone down (optimize_for_inference), and training may run it
        # under autocast; the head (magnitude, phase) and its inverse FFT stay in float32.
        hidden = self.backbone(c.to(self.backbone.embed.weight.dtype))  # (B, T_frames, channels)
        with float32(c.device.type):
            return self.head(hidden.float()).unsqueeze(1).to(c.dtype)

    def context_frames(self) -> int:
        """Frames on each side that one frame's samples depend on (for chunked decoding).

        The backbone's convolutions reach ``(kernel - 1) / 2 * dilation`` frames each; the
        inverse STFT adds the frames whose windows overlap a frame's samples.
        """
        reach = sum(
            (m.kernel_size[0] - 1) // 2 * m.dilation[0] for m in self.backbone.modules() if isinstance(m, torch.nn.Conv1d)
        )
        return reach + -(-self.n_fft // (2 * self.hop_length))
