"""The paper's WaveGAN decoder: ESPnet's HiFi-GAN generator on the latent (``decoder: {type: hifigan}``)."""

import math
from typing import List, Optional

import torch
from espnet2.gan_tts.hifigan import HiFiGANGenerator
from typeguard import typechecked

from espnet2_glow_wavegan.espnet_patches import padding_zeroed_at_convolutions
from espnet2_glow_wavegan.utils import frame_mask
from espnet2_glow_wavegan.wavegan.tiled_decoding import (
    DEFAULT_TILE_ELEMENTS,
    prepare_decoder_for_synthesis,
    residual_block_halo,
    synthesis_decode,
)


class HiFiGANDecoder(HiFiGANGenerator):
    """z (B, latent_dim, T_frames) -> waveform (B, 1, T_frames * hop): HiFi-GAN V1 by default.

    ESPnet's ``HiFiGANGenerator`` with the latent as its input, its upsampling checked
    against the encoder's hop, and a synthesis-only tiled path (``optimize_for_inference``).
    """

    @typechecked
    def __init__(
        self,
        latent_dim: int,
        hop_length: int,
        global_channels: int = -1,
        channels: int = 512,
        kernel_size: int = 7,
        upsample_scales: List[int] = [8, 8, 2, 2],
        upsample_kernel_sizes: List[int] = [16, 16, 4, 4],
        resblock_kernel_sizes: List[int] = [3, 7, 11],
        resblock_dilations: List[List[int]] = [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        use_weight_norm: bool = True,
    ):
        """Initialize HiFiGANDecoder.

        Args:
            latent_dim: Channels of z (set by the WaveGAN).
            hop_length: Samples per latent frame (set by the WaveGAN: its encoder's hop).
            global_channels: Channels of the speaker condition (set by the WaveGAN; -1: none).
            channels: Width of the first upsampling stage (halved at each stage).
            kernel_size: Kernel of the input and output convolutions.
            upsample_scales: Upsampling factors; their product must be the hop.
            upsample_kernel_sizes: Transposed-convolution kernels (2 x scale in HiFi-GAN).
            resblock_kernel_sizes: Kernels of the parallel residual stacks (multi-receptive-field fusion).
            resblock_dilations: Dilations of each residual stack.
            use_weight_norm: Weight normalisation of every convolution (training).
        """
        if math.prod(upsample_scales) != hop_length:
            raise ValueError(
                f"decoder upsample_scales {upsample_scales} multiply to {math.prod(upsample_scales)}, "
                f"not to the encoder's hop {hop_length}"
            )
        super().__init__(
            in_channels=latent_dim, out_channels=1, channels=channels, global_channels=global_channels,
            kernel_size=kernel_size, upsample_scales=upsample_scales, upsample_kernel_sizes=upsample_kernel_sizes,
            resblock_kernel_sizes=resblock_kernel_sizes, resblock_dilations=resblock_dilations,
            use_weight_norm=use_weight_norm,
        )
        self.hop_length = hop_length
        # Set by optimize_for_inference: decode through the tiled synthesis path.
        self.synthesis_tile_elements: Optional[int] = None

    def forward(self, c: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: c (B, latent_dim, T_frames); g (B, global_channels, 1) or None. Returns (B, 1, T_frames * hop)."""
        if self.synthesis_tile_elements is None:
            return super().forward(c, g=g)
        return synthesis_decode(self, c, g, self.synthesis_tile_elements)

    def decode_padded(self, c: torch.Tensor, lengths: torch.Tensor, g: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
        """A padded batch (B, latent_dim, T_frames) of ``lengths`` (B,) frames -> each waveform (1, lengths[b] * hop).

        Every convolution reads zeros past each item's end, as it pads the item alone. The
        tiled synthesis path (``optimize_for_inference``) decodes item by item: its tiles
        already keep the work in the caches, where batching would not help.
        """
        hop, sizes = self.hop_length, lengths.tolist()
        if self.synthesis_tile_elements is not None:
            return [self(c[b : b + 1, :, :size], None if g is None else g[b : b + 1])[0, :, : size * hop]
                    for b, size in enumerate(sizes)]
        speaker = [self.global_conv] if hasattr(self, "global_conv") else []
        with padding_zeroed_at_convolutions(self, frame_mask(lengths, c.size(2)), except_for=speaker):
            wav = super().forward(c, g=g)
        return [wav[b, :, : size * hop] for b, size in enumerate(sizes)]

    def context_frames(self) -> int:
        """Latent frames on each side that one frame's samples depend on (for chunked decoding).

        Each layer's reach in its own samples, over its input rate in samples per frame: the
        input convolution, each transposed convolution (``ceil(kernel / stride)`` inputs), each
        stage's widest residual stack, and the output convolution.
        """
        reach = (self.input_conv.kernel_size[0] - 1) / 2
        rate = 1
        for i in range(self.num_upsamples):
            upsample = self.upsamples[i][-1]
            reach += math.ceil(upsample.kernel_size[0] / upsample.stride[0]) / rate
            rate *= upsample.stride[0]
            blocks = self.blocks[i * self.num_blocks : (i + 1) * self.num_blocks]
            reach += max(residual_block_halo(block) for block in blocks) / rate
        reach += (self.output_conv[-2].kernel_size[0] - 1) / 2 / rate
        return math.ceil(reach)

    def optimize_for_inference(self, dtype: torch.dtype = torch.float32, tile_elements: int = DEFAULT_TILE_ELEMENTS):
        """Fold weight norm, cast to ``dtype`` and decode through the tiled, in-place path (synthesis only)."""
        prepare_decoder_for_synthesis(self, dtype)
        self.synthesis_tile_elements = tile_elements
        return self
