"""Where each synthesis stage reads: the window arithmetic of every backend, written once (no torch here).

glow_wavegan synthesises in four stages (``onnx/graphs.py`` exports them as graphs): the
text encoder, the sentence (prior statistics, durations, speaker conditions), the inverse flow
and the decoder. The text encoder's attention reads the whole text, so a long text is encoded in
windows with context; after the sentence, the flow and the decoder reach a fixed number of
frames on each side, so any stretch of output is exact when computed from a window holding its
reach. A :class:`Span` says which input window serves which stretch of output; the torch model
and the ONNX runtime both take their windows from the functions below.
"""

from dataclasses import dataclass
from typing import Callable, Iterator, List, Mapping, Optional, Tuple, Union

from espnet2_glow_wavegan.synthesis.checks import check_chunk_sizes, check_synthesis_knobs


@dataclass(frozen=True)
class Span:
    """Output positions ``[start, end)`` computed from the input window ``[lo, hi)`` (``lo <= start <= end <= hi``)."""

    start: int
    end: int
    lo: int
    hi: int

    def kept(self, scale: int = 1) -> slice:
        """Where the span's output lies in the window's output, ``scale`` output samples per position."""
        return slice((self.start - self.lo) * scale, (self.end - self.lo) * scale)


def with_context(start: int, end: int, context: int, length: int) -> Span:
    """``[start, end)`` read with ``context`` positions on each side, clipped to ``[0, length)``."""
    return Span(start, end, max(0, start - context), min(length, end + context))


def pieces(length: int, size: int, context: int) -> List[Span]:
    """``[0, length)`` cut in pieces of ``size``, each read with ``context`` on both sides."""
    return [with_context(start, min(start + size, length), context, length) for start in range(0, length, size)]


def text_windowed(tokens: int, window_tokens: int, window_context: int) -> bool:
    """Whether a text of ``tokens`` tokens is encoded in windows (longer than a window and its two contexts)."""
    return tokens > window_tokens + 2 * window_context


def text_spans(tokens: int, window_tokens: int, window_context: int) -> List[Span]:
    """The text encoder's windows: the whole text when it fits, else ``window_tokens`` with context each."""
    if not text_windowed(tokens, window_tokens, window_context):
        return [Span(0, tokens, 0, tokens)]
    return pieces(tokens, window_tokens, window_context)


def decode_spans(frames: int, chunk_frames: int, context_frames: int) -> List[Span]:
    """One-pass decoding: the whole latent, or chunks of ``chunk_frames`` (> 0) with the decoder's context."""
    if chunk_frames <= 0 or frames <= chunk_frames:
        return [Span(0, frames, 0, frames)]
    return pieces(frames, chunk_frames, context_frames)


def frames_up_to(frames: Union[int, Callable[[int], int]]) -> Callable[[int], int]:
    """``n -> min(n, frames)``: a known length, or the length function of a sentence still being encoded."""
    return frames if callable(frames) else (lambda n: min(n, frames))


def chunk_bounds(frames: Union[int, Callable[[int], int]], first_chunk_frames: int,
                 chunk_frames: int) -> Iterator[Tuple[int, int]]:
    """Streamed output frames ``(start, end)``: ``first_chunk_frames``, then doubling up to ``chunk_frames``.

    Each chunk recomputes its context, so small chunks cost more per sample; the first is small
    for an early start, and the later ones grow while the audio already out plays. ``frames``
    is the output's length, or ``n -> min(n, length)`` when the length is learnt as the text is
    encoded (each chunk asks only as far as it reaches).
    """
    check_chunk_sizes(chunk_frames, first_chunk_frames)
    up_to = frames_up_to(frames)
    start, size = 0, first_chunk_frames
    while True:
        end = up_to(start + size)
        if end <= start:
            return
        yield start, end
        start, size = end, min(chunk_frames, 2 * size)


def stream_spans(frames: Union[int, Callable[[int], int]], first_chunk_frames: int, chunk_frames: int,
                 context_frames: int) -> Iterator[Span]:
    """The decoder's windows of a stream: each chunk of :func:`chunk_bounds` with the decoder's context."""
    up_to = frames_up_to(frames)
    for start, end in chunk_bounds(up_to, first_chunk_frames, chunk_frames):
        yield Span(start, end, max(0, start - context_frames), up_to(end + context_frames))


def folded(frames: int, factor: int) -> int:
    """``frames`` rounded up to a multiple of the flow's squeeze ``factor`` (the flow's input length)."""
    return -(-frames // factor) * factor


# The synthesis knobs, each unset one taken from the model's configuration.
KNOBS = ("noise_scale", "length_scale", "max_output_seconds")


def synthesis_knobs(defaults: Mapping[str, float], noise_scale: Optional[float] = None,
                    length_scale: Optional[float] = None,
                    max_output_seconds: Optional[float] = None) -> Tuple[float, float, float]:
    """``(noise_scale, length_scale, max_output_seconds)`` of a call, unset ones from ``defaults``, checked."""
    given = dict(noise_scale=noise_scale, length_scale=length_scale, max_output_seconds=max_output_seconds)
    knobs = tuple(defaults[k] if given[k] is None else given[k] for k in KNOBS)
    check_synthesis_knobs(*knobs)
    return knobs
