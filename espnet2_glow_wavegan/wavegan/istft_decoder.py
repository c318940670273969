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

from typing import List, Optional

import torch
from typeguard import typechecked

from espnet2_glow_wavegan.espnet_patches import padding_zeroed_at_convolutions
from espnet2_glow_wavegan.utils import float32, frame_mask

SYNTHESIS_DTYPES = (torch.float32, torch.bfloat16)


class ISTFTDecoder(torch.nn.Module):
    """z (B, latent_dim, T_frames) -> waveform (B, 1, T_frames * hop)."""

    @typechecked
    def __init__(
        self,
        latent_dim: int,
        hop_length: int,
        global_channels: int = -1,
        channels: int = 512,
        intermediate_channels: int = 1536,
        layers: int = 8,
        n_fft: Optional[int] = None,
    ):
        """Initialize ISTFTDecoder.

        Args:
            latent_dim: Latent channels (set by the WaveGAN).
            hop_length: Samples per frame (set by the WaveGAN: its encoder's hop).
            global_channels: Channels of the speaker condition g (set by the WaveGAN; -1: none).
            channels: ConvNeXt width.
            intermediate_channels: ConvNeXt inverted-bottleneck width.
            layers: ConvNeXt blocks.
            n_fft: FFT size = window length of the inverse STFT (default 4 x hop, as Vocos).
        """
        super().__init__()
        from vocos.heads import ISTFTHead
        from vocos.models import VocosBackbone

        n_fft = n_fft or 4 * hop_length
        if (n_fft - hop_length) % 2:
            raise ValueError(f"n_fft - hop must be even for 'same' padding, got n_fft {n_fft}, hop {hop_length}")
        self.hop_length = hop_length
        self.n_fft = n_fft
        self.backbone = VocosBackbone(
            input_channels=latent_dim, dim=channels, intermediate_dim=intermediate_channels, num_layers=layers
        )
        self.head = ISTFTHead(dim=channels, n_fft=n_fft, hop_length=hop_length, padding="same")
        if global_channels > 0:
            self.global_conv = torch.nn.Conv1d(global_channels, latent_dim, 1)

    def forward(self, c: torch.Tensor, g: torch.Tensor = None) -> torch.Tensor:
        """Args: c (B, latent_dim, T_frames); g (B, global_channels, 1) or None. Returns (B, 1, T_frames * hop)."""
        if g is not None:
            c = c + self.global_conv(g)
        # Synthesis may cast the backbone down (optimize_for_inference), and training may run it
        # under autocast; the head (magnitude, phase) and its inverse FFT stay in float32.
        hidden = self.backbone(c.to(self.backbone.embed.weight.dtype))  # (B, T_frames, channels)
        with float32(c.device.type):
            return self.head(hidden.float()).unsqueeze(1).to(c.dtype)

    def decode_padded(self, c: torch.Tensor, lengths: torch.Tensor, g: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
        """A padded batch (B, latent_dim, T_frames) of ``lengths`` (B,) frames -> each waveform (1, lengths[b] * hop).

        The backbone runs on the batch with its convolutions reading zeros past each item's end
        (as for the item alone); the head and its inverse STFT, whose window envelope depends
        on where the item ends, run per item (a few percent of the work).
        """
        if g is not None:
            c = c + self.global_conv(g)
        with padding_zeroed_at_convolutions(self.backbone, frame_mask(lengths, c.size(2))):
            hidden = self.backbone(c.to(self.backbone.embed.weight.dtype))
        with float32(c.device.type):
            return [self.head(hidden[b : b + 1, :length].float()).to(c.dtype)
                    for b, length in enumerate(lengths.tolist())]

    def context_frames(self) -> int:
        """Frames on each side that one frame's samples depend on (for chunked decoding).

        The backbone's convolutions reach ``(kernel - 1) / 2 * dilation`` frames each; the
        inverse STFT adds the frames whose windows overlap a frame's samples.
        """
        reach = sum(
            (m.kernel_size[0] - 1) // 2 * m.dilation[0] for m in self.backbone.modules() if isinstance(m, torch.nn.Conv1d)
        )
        return reach + -(-self.n_fft // (2 * self.hop_length))

    def optimize_for_inference(self, dtype: torch.dtype = torch.float32, tile_elements: Optional[int] = None):
        """Cast the backbone to ``dtype`` (no weight norm, no tiles here); the inverse STFT stays float32."""
        if dtype not in SYNTHESIS_DTYPES:
            raise ValueError(f"decoder_dtype must be torch.float32 or torch.bfloat16, not {dtype}")
        self.backbone.to(dtype)
        return self
