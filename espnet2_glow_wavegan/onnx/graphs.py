"""glow_wavegan as ONNX graphs, split where synthesis can stream.

* ``text_encoder``: token ids (1, T_text) -> encoder states (1, hidden, T_text). The runtime
  encodes a long text in the same windows as ``FlowPrior.text_states``.
* ``sentence``: states, ``length_scale`` (and ``sids`` / ``spembs``) -> the per-token prior
  mean and log-std, the integer durations, and the speaker conditions of the flow and decoder.
* ``flow_0`` ... ``flow_<n-1>``: the inverse flow's blocks in the order they run
  (``GlowFlow.inverse_blocks``), each on squeezed frames (1, latent_dim * factor, T) and their
  mask. The runtime squeezes the prior sample and runs them through
  :class:`espnet2_glow_wavegan.synthesis.stream.InverseFlowStream`, as the torch model streams
  its flow: each block only as far as the next chunk needs, for one call and for streaming alike.
* ``decoder``: z (1, latent_dim, T) -> waveform (1, T * hop); exact but for
  ``decoder.context_frames()`` at each cut edge.

Between them the runtime only repeats rows by the durations and draws the noise, so
``noise_scale`` and ``length_scale`` stay inputs, and a given noise reproduces the torch
output. Prepared for export: weight norm folded, the invertible 1x1 convolutions' inverses
computed once, dropout off (eval), and the iSTFT head's inverse FFT written as a matrix
product and an overlap-add (ONNX has no inverse STFT operator).
"""

import copy
import math
from typing import Dict, List, Optional, Tuple

import torch
from torch.nn.utils import parametrize

from espnet2_glow_wavegan.glow.flow import GroupedInvertibleConv1x1, grouped_matmul
from espnet2_glow_wavegan.glow.prior import FlowPrior
from espnet2_glow_wavegan.wavegan.istft_decoder import ISTFTDecoder


def fold_weight_norm(module: torch.nn.Module) -> torch.nn.Module:
    """Replace weight normalisation (hooks or parametrisations) by plain weights, in place."""
    for m in module.modules():
        if hasattr(m, "weight_g") and hasattr(m, "weight_v"):
            torch.nn.utils.remove_weight_norm(m)
        elif parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight")
    return module


class ConvAsMatMul(torch.nn.Module):
    """A ``Conv1d`` (stride 1, no groups) as one matrix product over its ``kernel`` shifted copies of the input.

    The same numbers; the point is the operator: onnxruntime quantises matrix products to int8
    (MatMulInteger) much better than convolutions (ConvInteger, measured slower than float32).
    """

    def __init__(self, conv: torch.nn.Conv1d):
        super().__init__()
        out_channels, in_channels, self.kernel = conv.weight.shape
        self.dilation, self.padding = conv.dilation[0], conv.padding[0]
        # Row i * C_in + c of the matrix: input channel c at tap i.
        self.weight = torch.nn.Parameter(conv.weight.detach().permute(2, 1, 0).reshape(-1, out_channels).clone())
        self.bias = None if conv.bias is None else torch.nn.Parameter(conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.size(2)
        if self.kernel > 1:
            x = torch.nn.functional.pad(x, (self.padding, self.padding))
            x = torch.cat([x[:, :, i * self.dilation : i * self.dilation + frames] for i in range(self.kernel)], dim=1)
        y = torch.matmul(x.transpose(1, 2), self.weight)
        if self.bias is not None:
            y = y + self.bias
        return y.transpose(1, 2)


def convolutions_as_matmuls(module: torch.nn.Module) -> torch.nn.Module:
    """Replace every stride-1, ungrouped ``Conv1d`` below ``module`` by :class:`ConvAsMatMul`, in place."""
    for name, child in module.named_children():
        if (isinstance(child, torch.nn.Conv1d) and child.stride[0] == 1 and child.groups == 1
                and isinstance(child.padding[0], int)):
            setattr(module, name, ConvAsMatMul(child))
        else:
            convolutions_as_matmuls(child)
    return module


class TextEncoderGraph(torch.nn.Module):
    """Token ids (1, T_text) -> text encoder states (1, hidden, T_text), one window of text."""

    def __init__(self, prior: FlowPrior):
        super().__init__()
        self.prior = prior

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.prior._encode(text, torch.ones_like(text, dtype=torch.float32).unsqueeze(1))


class SentenceGraph(torch.nn.Module):
    """Encoder states -> prior statistics, durations and speaker conditions (see the module docstring)."""

    def __init__(self, prior: FlowPrior, wavegan_speaker: torch.nn.Module, speaker_inputs: List[str]):
        super().__init__()
        self.prior = prior
        self.wavegan_speaker = wavegan_speaker
        self.speaker_inputs = speaker_inputs

    def forward(self, h: torch.Tensor, length_scale: torch.Tensor, *speaker: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        speaker_inputs = dict(zip(self.speaker_inputs, speaker))
        mask = torch.ones_like(h[:, :1])
        g = self.prior.speaker(**speaker_inputs)
        mean, log_std, log_dur = self.prior.token_statistics(h, mask, g)
        durations = self.prior.predict_durations(log_dur, mask, length_scale)
        conditions = [c for c in (g, self.wavegan_speaker(**speaker_inputs)) if c is not None]
        return (mean, log_std, durations, *conditions)


class InverseFlowBlockGraph(torch.nn.Module):
    """One block of the inverse flow (``GlowFlow.inverse_blocks``) on squeezed frames, each 1x1 inverse computed once.

    x (1, C * factor, T) and its mask (1, 1, T) -> the block's output y over the same frames.
    """

    def __init__(self, steps):
        super().__init__()
        self.steps = torch.nn.ModuleList(steps)
        for k, step in enumerate(self.steps):
            if isinstance(step, GroupedInvertibleConv1x1):
                self.register_buffer(f"inverse_{k}", step.inverse_matrix())

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = x
        for k, step in enumerate(self.steps):
            if isinstance(step, GroupedInvertibleConv1x1):
                y = grouped_matmul(getattr(self, f"inverse_{k}"), y) * mask
            else:
                y, _ = step(y, mask, g=g, reverse=True)
        return y


class MatmulISTFTHead(torch.nn.Module):
    """Vocos' ``ISTFTHead`` ("same" padding) with its inverse STFT as a matrix product and an overlap-add.

    The inverse real FFT of each frame, times the synthesis window, is one product with a
    (2 * bins, n_fft) basis (real and imaginary parts side by side); the frames are then
    overlapped and added, and divided by the summed squared window, as Vocos' ``ISTFT`` does.
    """

    def __init__(self, head):
        super().__init__()
        istft = head.istft
        if istft.padding != "same":
            raise ValueError(f"only the 'same' padding of the iSTFT head exports, not '{istft.padding}'")
        self.out = head.out
        self.n_fft, self.hop = istft.n_fft, istft.hop_length
        window = istft.window.double()
        bins = self.n_fft // 2 + 1
        angle = 2 * math.pi * torch.outer(torch.arange(bins).double(), torch.arange(self.n_fft).double()) / self.n_fft
        # irfft: DC and Nyquist once, the other bins twice (their conjugates); the norm is 1 / n_fft.
        weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if self.n_fft % 2 == 0:
            weight[-1] = 1.0
        basis = torch.cat([weight * torch.cos(angle), -weight * torch.sin(angle)]) / self.n_fft * window
        self.register_buffer("basis", basis.float())
        self.register_buffer("window_sq", window.square().float().view(1, -1, 1))
        if self.n_fft % self.hop:  # the general overlap-add: a transposed convolution with an identity kernel
            self.register_buffer("overlap_add_kernel", torch.eye(self.n_fft).unsqueeze(1))

    def overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (B, n_fft, T) -> (B, (T - 1) * hop + n_fft), each frame added at its hop.

        With n_fft = r * hop (Vocos' 4 x hop), a frame is r hop-long pieces, and piece j of every
        frame lands j hops later: r shifted sums instead of an n_fft x n_fft transposed
        convolution (measured 3-4x faster in ONNX Runtime, see benchmarks/results/onnx_runtime.md).
        """
        if self.n_fft % self.hop:
            return torch.nn.functional.conv_transpose1d(frames, self.overlap_add_kernel, stride=self.hop)[:, 0]
        b, _, t = frames.shape
        r = self.n_fft // self.hop
        pieces = frames.transpose(1, 2).reshape(b, t, r, self.hop)
        out = None
        for j in range(r):
            piece = torch.nn.functional.pad(pieces[:, :, j].reshape(b, t * self.hop), (j * self.hop, (r - 1 - j) * self.hop))
            out = piece if out is None else out + piece
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, T_frames, dim). Returns the waveform (B, T_frames * hop)."""
        log_mag, phase = self.out(x).chunk(2, dim=-1)
        mag = torch.clip(torch.exp(log_mag), max=1e2)
        spectrum = torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=-1)  # (B, T, 2 * bins)
        frames = torch.matmul(spectrum, self.basis).transpose(1, 2)  # (B, n_fft, T)
        envelope = self.overlap_add(self.window_sq.expand(1, -1, frames.size(2)))
        pad = (self.n_fft - self.hop) // 2
        return self.overlap_add(frames)[:, pad:-pad] / envelope[:, pad:-pad]


class DecoderGraph(torch.nn.Module):
    """z (1, latent_dim, T) (and the decoder's speaker condition) -> waveform (1, T * hop)."""

    def __init__(self, decoder: torch.nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, z: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.decoder(z, g=g)[:, 0]


def exportable_parts(model) -> Dict[str, torch.nn.Module]:
    """The graphs of a glow_wavegan ``model`` by name (a prepared copy; the model is left as it is)."""
    for m in model.modules():  # weight norm's hook keeps the last computed weight, which deepcopy refuses
        if hasattr(m, "weight_g") and isinstance(getattr(m, "weight", None), torch.Tensor):
            m.weight = m.weight.detach()
    model = fold_weight_norm(copy.deepcopy(model).float().eval())
    prior, wavegan = model.generator.prior, model.generator.wavegan
    decoder = wavegan.decoder
    if isinstance(decoder, ISTFTDecoder):
        decoder.head = MatmulISTFTHead(decoder.head)
    elif getattr(decoder, "synthesis_tile_elements", None) is not None:
        decoder.synthesis_tile_elements = None  # the tiles are a torch-side memory layout; the graph is one pass
    blocks, _ = prior.flow.inverse_blocks()
    return dict(text_encoder=TextEncoderGraph(prior),
                sentence=SentenceGraph(prior, wavegan.speaker, speaker_input_names(model)),
                **{flow_graph(k): InverseFlowBlockGraph(steps) for k, steps in enumerate(blocks)},
                decoder=DecoderGraph(decoder))


def flow_graph(k: int) -> str:
    """The name of the inverse flow's ``k``-th block graph (in the order they run)."""
    return f"flow_{k}"


def speaker_input_names(model) -> List[str]:
    return [name for name, size in (("sids", model.spks), ("spembs", model.spk_embed_dim)) if size]
