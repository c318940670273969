"""Streaming synthesis after the sentence stage, written once for every backend (no torch here).

Everything after the durations has a finite reach in time: each block of the inverse flow (its
coupling's WaveNet) and the decoder (``decoder.context_frames()``). A chunk of output frames
``[a, b)`` is decoded from the latent ``[a - c, b + c)`` (``c`` the decoder's context), and the
flow computes that latent from its own reach (:class:`InverseFlowStream`); the samples of the
context frames are dropped. So each chunk is exact, and the first one costs a few chunks' work
instead of the whole sentence's. A one-pass flow is the same stream asked for every frame at once.

The prior sample the flow reads is asked for as far as it is needed: a long text is encoded
window by window (:class:`~espnet2_glow_wavegan.synthesis.engine.Sentence`) as the stream
reaches it, so the first chunk of a paragraph waits for its first text window only.

The arrays are the backend's: torch tensors for ``GlowWaveGAN.inference_stream``, numpy arrays
for the ONNX runtime, each (1, channels, frames). The backend hands over its flow blocks, its
decoder and its (un)squeeze; the window arithmetic is :mod:`espnet2_glow_wavegan.synthesis.plan`'s.
"""

import math
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from espnet2_glow_wavegan.synthesis.plan import chunk_bounds, stream_spans

# (window of the previous block's output, its mask) -> this block's output over the same window
Block = Callable[[object, object], object]


class InverseFlowStream:
    """The inverse flow of one sentence, computed left to right as far as asked.

    The output's first ``n`` squeezed frames need the last block's input up to ``n + r_last``,
    the block before's up to ``n + r_last + r_before``, ...: each block is run up to where the
    blocks after it read, on a window holding its new frames and its reach on each side, and
    keeps its output for the next request. The frames returned equal the one-pass inverse up to
    float summation order.

    Args:
        blocks: The inverse flow's blocks in the order they run (each a coupling and the
            pointwise steps after it).
        reach: Squeezed frames on each side that each block's output reads of its input.
        prior: Latent frames wanted -> ``(z_p, whole)``: the prior sample so far (1, C, n),
            ``n`` at least the frames wanted unless ``whole`` (the sentence's, zero-padded to
            the flow's fold).
        factor: The flow's squeeze factor (latent frames per squeezed frame).
        squeeze, unsqueeze: Latent frames (1, C, n * factor) <-> squeezed (1, C * factor, n).
        join: Pieces (1, C, n_i) -> one array along time.
        ones: ``ones(x)``: the mask (1, 1, frames of x) of a window inside the sentence.
    """

    def __init__(self, blocks: Sequence[Block], reach: Sequence[int], prior: Callable[[int], Tuple[object, bool]],
                 factor: int, squeeze: Callable, unsqueeze: Callable, join: Callable, ones: Callable):
        if len(blocks) != len(reach):
            raise ValueError(f"{len(blocks)} flow blocks and {len(reach)} reaches: one reach a block")
        self.blocks, self.reach, self.prior = list(blocks), list(reach), prior
        self.factor, self.squeeze, self.unsqueeze, self.join, self.ones = factor, squeeze, unsqueeze, join, ones
        self.frames: Optional[int] = None  # squeezed frames of the sentence, once its prior sample is whole
        self.outputs: List[object] = [None] * (len(self.blocks) + 1)  # the prior sample, then each block's output
        self.done = [0] * (len(self.blocks) + 1)  # squeezed frames each output holds

    def _read_prior(self, squeezed: int) -> None:
        """The squeezed prior sample up to ``squeezed`` frames, or the whole of it."""
        if self.frames is not None or self.done[0] >= squeezed:
            return
        z_p, whole = self.prior(squeezed * self.factor)
        if z_p.shape[0] != 1:
            raise ValueError(f"the flow streams one item at a time, got a batch of {z_p.shape[0]}")
        usable = z_p.shape[2] // self.factor
        self.outputs[0] = self.squeeze(z_p[:, :, : usable * self.factor])
        self.done[0] = usable
        if whole:
            self.frames = usable

    def latent(self, start: int, end: int):
        """Latent frames ``[start, end)`` of the inverse flow (1, C, end - start), computing what they need."""
        needed = -(-end // self.factor)
        self._read_prior(needed + sum(self.reach))
        length = math.inf if self.frames is None else self.frames  # an open sentence: the prior read reaches far enough
        needed = min(length, needed)
        targets: List[int] = []  # how far each block must have run, last block first
        after = 0  # what the blocks after this one read beyond ``needed``
        for reach in reversed(self.reach):
            targets.append(min(length, needed + after))
            after += reach
        for k, (block, reach, target) in enumerate(zip(self.blocks, self.reach, reversed(targets)), start=1):
            done = self.done[k]
            if target <= done:
                continue
            lo, hi = max(0, done - reach), min(length, target + reach)
            assert self.done[k - 1] >= hi, "a flow block ran ahead of its input"
            window = self.outputs[k - 1][:, :, lo:hi]
            piece = block(window, self.ones(window))[:, :, done - lo : target - lo]
            self.outputs[k] = piece if self.outputs[k] is None else self.join([self.outputs[k], piece])
            self.done[k] = target
        first = start // self.factor
        z = self.unsqueeze(self.outputs[-1][:, :, first:needed])
        return z[:, :, start - first * self.factor : end - first * self.factor]


class SynthesisStream:
    """The waveform of one sentence in chunks: iterate it (each chunk a 1-D array of samples).

    Made by ``GlowWaveGAN.inference_stream`` (torch tensors) and ``OnnxText2Speech.stream``
    (numpy arrays). A text within one text-encoder window is encoded before the first chunk; a
    longer one window by window as the chunks reach it. ``durations`` (frames per token) and
    ``num_samples`` encode the rest of such a text when first read; ``sampling_rate`` is known.

    Args:
        flow: The sentence's inverse flow.
        decode: Latent window (1, latent_dim, n) -> its waveform (n * hop,).
        sentence: The :class:`~espnet2_glow_wavegan.synthesis.engine.Sentence` (its
            ``frames_up_to``, ``frames`` and ``durations``).
        hop: Samples per latent frame.
        context_frames: The decoder's reach on each side.
        sampling_rate: Hz.
        chunk_frames, first_chunk_frames: See :func:`espnet2_glow_wavegan.synthesis.plan.chunk_bounds`.
    """

    def __init__(self, flow: InverseFlowStream, decode: Callable, sentence, hop: int, context_frames: int,
                 sampling_rate: int, chunk_frames: int, first_chunk_frames: int):
        self.flow, self.decode, self.sentence = flow, decode, sentence
        self.hop, self.context, self.sampling_rate = hop, context_frames, sampling_rate
        self.chunk_frames, self.first_chunk_frames = chunk_frames, first_chunk_frames

    @property
    def durations(self):
        return self.sentence.durations

    @property
    def num_samples(self) -> int:
        return self.sentence.frames * self.hop

    def chunk_bounds(self) -> Iterator[Tuple[int, int]]:
        """Output frames ``(start, end)`` of each chunk."""
        return chunk_bounds(self.sentence.frames, self.first_chunk_frames, self.chunk_frames)

    def __iter__(self):
        for span in stream_spans(self.sentence.frames_up_to, self.first_chunk_frames, self.chunk_frames, self.context):
            yield self.decode(self.flow.latent(span.lo, span.hi))[span.kept(self.hop)]
