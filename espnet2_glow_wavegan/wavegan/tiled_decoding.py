"""Cache-friendly synthesis with ESPnet's HiFi-GAN generator (same weights, same output).

At synthesis the decoder dominates the run time (about 95% at the paper size), and on a
CPU its residual stacks are bound by memory traffic, not arithmetic: each dilated conv of
a ``ResidualBlock`` reads and writes activations of ``channels x T_wav`` floats that do
not fit in the core caches, and the three parallel blocks of a stage read their common
input three times. Decoding each stage's residual stacks tile by tile (a few thousand
samples, with the stacks' receptive field as overlap on both sides) keeps a tile in L2
while all its convs run, and the element-wise steps are done in place.

The kept part of every tile sees exactly the samples the one-pass decoder sees, so the
output equals ``decoder(c, g)`` up to float summation order (tested to 1e-5). The
overlap adds ``2 x halo / tile`` work (about 2-3% at the default tile).

Only inference: no autograd graph is kept (in-place ops), call it under
``torch.inference_mode()`` or ``torch.no_grad()``.

A decoder cast to ``torch.bfloat16`` (``optimize_for_inference(decoder_dtype=...)``) runs
its convs in bfloat16, which CPUs with AVX512-BF16 or AMX execute about twice as fast as
float32; the waveform then deviates from the float32 one by about 0.3% of its RMS
(paper-size decoder, random weights), so that is an opt-in trade, not the default.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from espnet2.gan_tts.hifigan.hifigan import HiFiGANGenerator
from espnet2.gan_tts.hifigan.residual_block import ResidualBlock

# Floats of one tile (channels x samples): 2**20 floats = 4 MiB, measured best on a
# 2-core EPYC (2 MiB L2 per core; oneDNN splits a tile between the threads).
DEFAULT_TILE_ELEMENTS = 2**20
MIN_TILE_SAMPLES = 1024


def residual_block_halo(block: ResidualBlock) -> int:
    """Samples on each side that one output sample of ``block`` depends on."""
    halo = 0
    for stack in (block.convs1, getattr(block, "convs2", [])):
        for layer in stack:
            conv = layer[-1]
            halo += conv.dilation[0] * (conv.kernel_size[0] - 1) // 2
    return halo


def _activation(layer: torch.nn.Sequential, x: torch.Tensor, inplace: bool) -> torch.Tensor:
    act = layer[0]
    if inplace and isinstance(act, torch.nn.LeakyReLU):
        return F.leaky_relu_(x, act.negative_slope)
    return act(x)


def residual_block_forward(block: ResidualBlock, x: torch.Tensor) -> torch.Tensor:
    """``block(x)`` without temporaries beyond one activation; ``x`` is not modified."""
    for idx, first in enumerate(block.convs1):
        xt = first[-1](_activation(first, x, inplace=False))
        if block.use_additional_convs:
            second = block.convs2[idx]
            xt = second[-1](_activation(second, xt, inplace=True))
        x = xt.add_(x)
    return x


def _stage_tile(blocks, x: torch.Tensor) -> torch.Tensor:
    acc = residual_block_forward(blocks[0], x)
    for block in blocks[1:]:
        acc.add_(residual_block_forward(block, x))
    return acc.div_(len(blocks))


def tiled_residual_stage(blocks, c: torch.Tensor, tile_elements: int = DEFAULT_TILE_ELEMENTS) -> torch.Tensor:
    """Mean of the parallel residual ``blocks`` over ``c`` (B, C, T), decoded in tiles."""
    halo = max(residual_block_halo(block) for block in blocks)
    length = c.size(2)
    tile = max(MIN_TILE_SAMPLES, tile_elements // (c.size(0) * c.size(1)))
    if length <= tile + 2 * halo:
        return _stage_tile(blocks, c)
    out = torch.empty_like(c)
    for start in range(0, length, tile):
        end = min(start + tile, length)
        left, right = max(0, start - halo), min(length, end + halo)
        acc = _stage_tile(blocks, c[:, :, left:right])
        out[:, :, start:end] = acc[:, :, start - left : end - left]
    return out


SYNTHESIS_DTYPES = (torch.float32, torch.bfloat16)


def prepare_decoder_for_synthesis(decoder: HiFiGANGenerator, dtype: torch.dtype = torch.float32) -> HiFiGANGenerator:
    """Fold weight norm into plain weights and cast to ``dtype`` (irreversible; for synthesis only)."""
    if dtype not in SYNTHESIS_DTYPES:
        raise ValueError(f"decoder_dtype must be torch.float32 or torch.bfloat16, not {dtype}")
    decoder.remove_weight_norm()
    return decoder.to(dtype)


def synthesis_decode(
    decoder: HiFiGANGenerator,
    c: torch.Tensor,
    g: Optional[torch.Tensor] = None,
    tile_elements: int = DEFAULT_TILE_ELEMENTS,
) -> torch.Tensor:
    """:func:`tiled_decode` in the decoder's dtype; the waveform comes back in ``c``'s dtype."""
    dtype = decoder.input_conv.weight.dtype
    wav = tiled_decode(decoder, c.to(dtype), None if g is None else g.to(dtype), tile_elements)
    return wav.to(c.dtype)


def tiled_decode(
    decoder: HiFiGANGenerator,
    c: torch.Tensor,
    g: Optional[torch.Tensor] = None,
    tile_elements: int = DEFAULT_TILE_ELEMENTS,
) -> torch.Tensor:
    """``decoder(c, g)`` for synthesis: (B, in_channels, T) -> (B, out_channels, T * hop)."""
    if torch.is_grad_enabled() and any(p.requires_grad for p in decoder.parameters()):
        raise RuntimeError("tiled_decode is for synthesis: call it under torch.inference_mode() or torch.no_grad()")
    c = decoder.input_conv(c)
    if g is not None:
        c = c + decoder.global_conv(g)
    for i in range(decoder.num_upsamples):
        c = decoder.upsamples[i](c)
        blocks = decoder.blocks[i * decoder.num_blocks : (i + 1) * decoder.num_blocks]
        c = tiled_residual_stage(blocks, c, tile_elements)
    return decoder.output_conv(c)
