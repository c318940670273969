"""Streaming synthesis after the sentence stage, written once for every backend (no torch here).

Everything after the durations has a finite reach in time: each block of the inverse flow (its
coupling's WaveNet) and the decoder (``decoder.context_frames()``). A chunk of output frames
``[a, b)`` is decoded from the latent ``[a - c, b + c)`` (``c`` the decoder's context), and the
flow computes that latent from its own reach (:class:`InverseFlowStream`); the samples of the
context frames are dropped. So each chunk is exact, and the first one costs a few chunks' work
instead of the whole sentence's. A one-pass flow is the same stream asked for every frame at once.

The arrays are the backend's: torch tensors for ``GlowWaveGAN.inference_stream``, numpy arrays
for the ONNX runtime, each (1, channels, frames). The backend hands over its flow blocks, its
decoder and its (un)squeeze; the window arithmetic is :mod:`espnet2_glow_wavegan.synthesis.plan`'s.
"""

from typing import Callable, Iterator, List, Sequence, Tuple

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
        y: The squeezed prior sample (1, C * factor, T), zero past the sentence.
        mask: The squeezed mask (1, 1, T).
        factor: The flow's squeeze factor (latent frames per squeezed frame).
        unsqueeze: Squeezed frames (1, C * factor, n) -> latent frames (1, C, n * factor).
        zeros_like: The backend's ``zeros_like``.
    """

    def __init__(self, blocks: Sequence[Block], reach: Sequence[int], y, mask, factor: int,
                 unsqueeze: Callable, zeros_like: Callable):
        if len(blocks) != len(reach):
            raise ValueError(f"{len(blocks)} flow blocks and {len(reach)} reaches: one reach a block")
        if y.shape[0] != 1:
            raise ValueError(f"the flow streams one item at a time, got a batch of {y.shape[0]}")
        self.blocks, self.reach = list(blocks), list(reach)
        self.mask, self.factor, self.unsqueeze = mask, factor, unsqueeze
        self.frames = y.shape[2]
        self.outputs = [y] + [zeros_like(y) for _ in self.blocks]
        self.done = [self.frames] + [0] * len(self.blocks)  # squeezed frames each output holds

    def latent(self, start: int, end: int):
        """Latent frames ``[start, end)`` of the inverse flow (1, C, end - start), computing what they need."""
        needed = min(self.frames, -(-end // self.factor))
        targets: List[int] = []  # how far each block must have run, last block first
        after = 0  # what the blocks after this one read beyond ``needed``
        for reach in reversed(self.reach):
            targets.append(min(self.frames, needed + after))
            after += reach
        for k, (block, reach, target) in enumerate(zip(self.blocks, self.reach, reversed(targets)), start=1):
            done = self.done[k]
            if target <= done:
                continue
            lo, hi = max(0, done - reach), min(self.frames, target + reach)
            assert self.done[k - 1] >= hi, "a flow block ran ahead of its input"
            x = block(self.outputs[k - 1][:, :, lo:hi], self.mask[:, :, lo:hi])
            self.outputs[k][:, :, done:target] = x[:, :, done - lo : target - lo]
            self.done[k] = target
        first = start // self.factor
        z = self.unsqueeze(self.outputs[-1][:, :, first:needed])
        return z[:, :, start - first * self.factor : end - first * self.factor]


class SynthesisStream:
    """The waveform of one sentence in chunks: iterate it (each chunk a 1-D array of samples).

    Made by ``GlowWaveGAN.inference_stream`` (torch tensors) and ``OnnxText2Speech.stream``
    (numpy arrays). ``durations`` (frames per token), ``num_samples`` and ``sampling_rate`` are
    known before the first chunk.

    Args:
        flow: The sentence's inverse flow.
        decode: Latent window (1, latent_dim, n) -> its waveform (n * hop,).
        frames: Latent frames of the sentence.
        hop: Samples per latent frame.
        context_frames: The decoder's reach on each side.
        durations: Frames per token (T_text,).
        sampling_rate: Hz.
        chunk_frames, first_chunk_frames: See :func:`espnet2_glow_wavegan.synthesis.plan.chunk_bounds`.
    """

    def __init__(self, flow: InverseFlowStream, decode: Callable, frames: int, hop: int, context_frames: int,
                 durations, sampling_rate: int, chunk_frames: int, first_chunk_frames: int):
        self.flow, self.decode = flow, decode
        self.frames, self.hop, self.context = frames, hop, context_frames
        self.durations, self.sampling_rate = durations, sampling_rate
        self.num_samples = frames * hop
        self.chunk_frames, self.first_chunk_frames = chunk_frames, first_chunk_frames

    def chunk_bounds(self) -> Iterator[Tuple[int, int]]:
        """Output frames ``(start, end)`` of each chunk."""
        return chunk_bounds(self.frames, self.first_chunk_frames, self.chunk_frames)

    def __iter__(self):
        for span in stream_spans(self.frames, self.first_chunk_frames, self.chunk_frames, self.context):
            yield self.decode(self.flow.latent(span.lo, span.hi))[span.kept(self.hop)]
