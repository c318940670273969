"""Glow-TTS flow decoder: ActNorm, grouped invertible 1x1 convolution, affine coupling, squeeze.

Every layer maps ``(x, mask) -> (y, logdet)`` in the forward (data -> prior)
direction and ``y -> x`` with ``reverse=True``; ``logdet`` is the exact log
|det dy/dx| per batch item, counted over valid frames only.

Under mixed precision the flow's state and log-determinants stay float32: only the
coupling networks (WaveNets) run in the autocast precision; the maps applied to the
state (ActNorm, the 1x1 convolution, the affine transform) are computed in float32.
"""

import functools
from typing import Callable, List, Optional, Tuple

import torch
import torch.distributed as dist
from espnet2.gan_tts.wavenet import WaveNet
from typeguard import typechecked

from espnet2_glow_wavegan.synthesis.stream import InverseFlowStream
from espnet2_glow_wavegan.utils import float32


def squeeze(x: torch.Tensor, mask: torch.Tensor, factor: int = 2) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fold time into channels: (B, C, T) -> (B, C * factor, T // factor).

    ``T`` must be a multiple of ``factor``. A folded frame is valid when the
    last of its ``factor`` source frames is (so all of them are).
    """
    b, c, t = x.shape
    if t % factor:
        raise ValueError(f"squeeze needs a length divisible by {factor}, got {t}")
    y = x.view(b, c, t // factor, factor).permute(0, 3, 1, 2).reshape(b, c * factor, t // factor)
    return y, mask[:, :, factor - 1 :: factor]


def unsqueeze(y: torch.Tensor, mask: torch.Tensor, factor: int = 2) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`squeeze`: (B, C * factor, T) -> (B, C, T * factor)."""
    return unfold_frames(y, factor), mask.repeat_interleave(factor, dim=-1)


def unfold_frames(y: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """:func:`unsqueeze` without the mask."""
    b, cf, t = y.shape
    c = cf // factor
    return y.reshape(b, factor, c, t).permute(0, 2, 3, 1).reshape(b, c, t * factor)


class ActNorm(torch.nn.Module):
    """Per-channel affine map, initialised from the first batch to zero mean, unit variance."""

    def __init__(self, channels: int):
        super().__init__()
        self.log_scale = torch.nn.Parameter(torch.zeros(1, channels, 1))
        self.bias = torch.nn.Parameter(torch.zeros(1, channels, 1))
        # A buffer, so that a loaded checkpoint is never re-initialised; mirrored in a Python
        # flag (set on initialisation and on loading), so that no step reads it back from the device.
        self.register_buffer("initialized", torch.tensor(False))
        self._initialized = False
        self.register_load_state_dict_post_hook(_mirror_initialized)

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor, mask: torch.Tensor):
        stats = torch.stack([(x * mask).sum(dim=(0, 2)), (x * x * mask).sum(dim=(0, 2))])
        count = mask.sum().expand(1).clone()
        if dist.is_available() and dist.is_initialized():
            # Same initialisation on every rank, or DDP replicas drift apart.
            dist.all_reduce(stats)
            dist.all_reduce(count)
        mean = stats[0] / count.clamp(min=1)
        var = (stats[1] / count.clamp(min=1) - mean**2).clamp(min=1e-6)
        log_std = 0.5 * torch.log(var)
        self.log_scale.data.copy_(-log_std.view(1, -1, 1))
        self.bias.data.copy_((-mean * torch.exp(-log_std)).view(1, -1, 1))
        self.initialized.fill_(True)
        self._initialized = True

    def forward(self, x, mask, g=None, reverse=False):
        if not self._initialized and not reverse and self.training:
            self._initialize(x, mask)
        lengths = mask.sum(dim=(1, 2))
        if not reverse:
            y = (x * torch.exp(self.log_scale) + self.bias) * mask
            return y, self.log_scale.sum() * lengths
        y = (x - self.bias) * torch.exp(-self.log_scale) * mask
        return y, -self.log_scale.sum() * lengths


def _mirror_initialized(module, incompatible_keys):
    module._initialized = bool(module.initialized)


class GroupedInvertibleConv1x1(torch.nn.Module):
    """Invertible 1x1 convolution shared by channel groups (Glow-TTS' "InvConvNear").

    A full C x C matrix is costly to invert at C = 256; instead each group of
    ``group_size`` channels (half from each coupling half, so the two halves
    mix) goes through the same ``group_size x group_size`` matrix.
    """

    def __init__(self, channels: int, group_size: int = 4):
        super().__init__()
        if group_size % 2 or channels % group_size:
            raise ValueError(f"channels {channels} must split into groups of an even size {group_size}")
        self.channels = channels
        self.group_size = group_size
        w = torch.linalg.qr(torch.randn(group_size, group_size))[0]
        if torch.det(w) < 0:
            w[:, 0] = -w[:, 0]
        self.weight = torch.nn.Parameter(w)

    def forward(self, x, mask, g=None, reverse=False):
        lengths = mask.sum(dim=(1, 2))
        # Determinant, inverse and the map in at least float32 (half precision is too coarse);
        # inv_ex: no singularity check, which would read the result back to the host.
        dtype = torch.promote_types(x.dtype, torch.float32)
        with float32(x.device.type):
            weight = self.weight.to(torch.promote_types(self.weight.dtype, torch.float32))
            logdet = torch.linalg.slogdet(weight)[1]
            if reverse:
                weight = torch.linalg.inv_ex(weight)[0]
                logdet = -logdet
            weight, logdet = weight.to(dtype), logdet.to(dtype)
            y = grouped_matmul(weight, x.to(dtype))
        return y * mask, logdet * (self.channels // self.group_size) * lengths

    def inverse_matrix(self) -> torch.Tensor:
        """The group matrix of the reverse direction (float32), for a graph that stores it once."""
        with torch.no_grad():
            return torch.linalg.inv(self.weight.float())


def grouped_matmul(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``weight`` (g, g) applied to each group of ``x`` (B, C, T): group k = channels 2k, 2k+1 of each half."""
    b, c, t = x.shape
    g = weight.size(0)
    grouped = x.view(b, 2, c // g, g // 2, t).permute(0, 2, 1, 3, 4).reshape(b, c // g, g, t)
    y = torch.einsum("ij,bnjt->bnit", weight, grouped)
    return y.view(b, c // g, 2, g // 2, t).permute(0, 2, 1, 3, 4).reshape(b, c, t)


class AffineCoupling(torch.nn.Module):
    """x = [x_a, x_b] -> [x_a, x_b * exp(log_s) + m], with (m, log_s) = WaveNet(x_a, g).

    The output layer starts at zero, so every coupling starts as the identity.
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int = 192,
        kernel_size: int = 5,
        dilation_rate: int = 1,
        layers: int = 4,
        dropout_rate: float = 0.05,
        global_channels: int = -1,
        use_weight_norm: bool = True,
    ):
        super().__init__()
        self.half = channels // 2
        self.input_conv = torch.nn.Conv1d(self.half, hidden_channels, 1)
        self.wavenet = WaveNet(
            in_channels=-1,
            out_channels=-1,
            kernel_size=kernel_size,
            layers=layers,
            stacks=1,
            base_dilation=dilation_rate,
            residual_channels=hidden_channels,
            aux_channels=-1,
            gate_channels=2 * hidden_channels,
            skip_channels=hidden_channels,
            global_channels=global_channels,
            dropout_rate=dropout_rate,
            use_weight_norm=use_weight_norm,
            use_first_conv=False,
            use_last_conv=False,
            scale_residual=False,
            scale_skip_connect=True,
        )
        self.output_conv = torch.nn.Conv1d(hidden_channels, 2 * (channels - self.half), 1)
        self.output_conv.weight.data.zero_()
        self.output_conv.bias.data.zero_()

    def forward(self, x, mask, g=None, reverse=False):
        x_a, x_b = x[:, : self.half], x[:, self.half :]
        h = self.wavenet(self.input_conv(x_a) * mask, x_mask=mask, g=g)
        m, log_s = self.output_conv(h).to(x.dtype).chunk(2, dim=1)  # the transform in the state's precision
        if not reverse:
            y_b = (x_b * torch.exp(log_s) + m) * mask
            logdet = torch.sum(log_s * mask, dim=(1, 2))
        else:
            y_b = (x_b - m) * torch.exp(-log_s) * mask
            logdet = -torch.sum(log_s * mask, dim=(1, 2))
        return torch.cat([x_a, y_b], dim=1), logdet


class GlowFlow(torch.nn.Module):
    """The Glow-TTS decoder: squeeze, then ``blocks`` x {ActNorm, 1x1 conv, coupling}, unsqueeze.

    Maps a latent sequence (B, C, T) to the prior space and back, T a multiple
    of ``squeeze_factor``; speaker conditioning ``g`` (B, global_channels, 1)
    enters every coupling network.
    """

    @typechecked
    def __init__(
        self,
        channels: int,
        blocks: int = 12,
        squeeze_factor: int = 2,
        group_size: int = 4,
        hidden_channels: int = 192,
        kernel_size: int = 5,
        dilation_rate: int = 1,
        layers: int = 4,
        dropout_rate: float = 0.05,
        global_channels: int = -1,
        use_weight_norm: bool = True,
    ):
        """Initialize GlowFlow.

        Args:
            channels: Latent channels (set by the prior: the WaveGAN's latent_dim).
            blocks: Flow steps, each ActNorm, invertible 1x1 convolution, affine coupling.
            squeeze_factor: Frames folded into channels before the steps.
            group_size: Channels per group of the invertible 1x1 convolution.
            hidden_channels, kernel_size, dilation_rate, layers, dropout_rate: The coupling
                networks' WaveNet.
            global_channels: Speaker condition channels (set by the prior; -1: none).
            use_weight_norm: Weight norm in the coupling networks (training).
        """
        super().__init__()
        self.squeeze_factor = squeeze_factor
        folded = channels * squeeze_factor
        self.flows = torch.nn.ModuleList()
        for _ in range(blocks):
            self.flows.append(ActNorm(folded))
            self.flows.append(GroupedInvertibleConv1x1(folded, group_size))
            self.flows.append(
                AffineCoupling(
                    folded,
                    hidden_channels=hidden_channels,
                    kernel_size=kernel_size,
                    dilation_rate=dilation_rate,
                    layers=layers,
                    dropout_rate=dropout_rate,
                    global_channels=global_channels,
                    use_weight_norm=use_weight_norm,
                )
            )

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        g: Optional[torch.Tensor] = None,
        reverse: bool = False,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the flow.

        Args:
            x: (B, C, T), T divisible by ``squeeze_factor``.
            mask: (B, 1, T).
            g: Global condition (B, global_channels, 1) or None.
            reverse: Prior space -> latent (True) instead of latent -> prior space.

        Returns:
            Tensor: Output (B, C, T).
            Tensor: log |det| of the map applied, per item (B,).
        """
        y, fmask = squeeze(x, mask, self.squeeze_factor)
        logdet = torch.zeros(x.size(0), dtype=x.dtype, device=x.device)
        for flow in reversed(self.flows) if reverse else self.flows:
            y, ld = flow(y, fmask, g=g, reverse=reverse)
            logdet = logdet + ld
        y, _ = unsqueeze(y, fmask, self.squeeze_factor)
        return y * mask, logdet

    def remove_weight_norm(self):
        """Fold weight normalisation of the coupling networks (for inference)."""
        for flow in self.flows:
            if isinstance(flow, AffineCoupling):
                flow.wavenet.remove_weight_norm()

    def step_reach(self) -> Tuple[int, ...]:
        """Squeezed frames on each side that each step's output reads of its input (couplings only)."""
        return tuple((f.wavenet.receptive_field_size - 1) // 2 if isinstance(f, AffineCoupling) else 0
                     for f in self.flows)

    def inverse_blocks(self) -> Tuple[List[List[torch.nn.Module]], List[int]]:
        """The inverse flow as it runs, in blocks (a coupling and the pointwise steps after it), and each block's reach."""
        blocks: List[List[torch.nn.Module]] = []
        reach: List[int] = []
        for step, step_reach in zip(reversed(self.flows), reversed(self.step_reach())):
            if step_reach or not blocks:
                blocks.append([])
                reach.append(0)
            blocks[-1].append(step)
            reach[-1] += step_reach
        return blocks, reach

    def inverse_stream(self, prior: Callable[[int], Tuple[torch.Tensor, bool]],
                       g: Optional[torch.Tensor] = None) -> InverseFlowStream:
        """``self(z_p, mask, g, reverse=True)`` of one item, computed as far as asked (see :class:`InverseFlowStream`).

        Args:
            prior: Latent frames wanted -> ``(z_p, whole)``: the prior sample so far (1, C, n),
                zero-padded to a multiple of the squeeze factor when ``whole``.
            g: Speaker condition (1, global_channels, 1) or None.
        """
        factor = self.squeeze_factor

        def block(steps):
            def run(x, block_mask):
                with torch.no_grad():  # a stream is read from a generator, which the caller's grad mode does not reach
                    for step in steps:
                        x, _ = step(x, block_mask, g=g, reverse=True)
                return x
            return run

        def ones(x):
            return x.new_ones(1, 1, x.size(2))

        blocks, reach = self.inverse_blocks()
        return InverseFlowStream([block(steps) for steps in blocks], reach, prior, factor,
                                 lambda z: squeeze(z, ones(z), factor)[0], functools.partial(unfold_frames, factor=factor),
                                 lambda pieces: torch.cat(pieces, dim=2), ones)
