"""Chunk plan of streamed synthesis, shared by the torch stream and the ONNX runtime (no torch here)."""

from typing import Iterator, Tuple


def chunk_bounds(frames: int, first_chunk_frames: int, chunk_frames: int) -> Iterator[Tuple[int, int]]:
    """Output frames ``(start, end)`` of each chunk: ``first_chunk_frames``, then doubling up to ``chunk_frames``.

    Each chunk recomputes its context, so small chunks cost more per sample; the first is
    small for an early start, and the later ones grow while the audio already out plays.
    """
    start, size = 0, first_chunk_frames
    while start < frames:
        end = min(frames, start + size)
        yield start, end
        start, size = end, min(chunk_frames, 2 * size)
