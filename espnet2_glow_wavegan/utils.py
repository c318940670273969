"""Small tensor helpers shared by the models."""

import torch


def frame_mask(lengths: torch.Tensor, frames: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 1, frames) mask, 1 on the first ``lengths[b]`` frames, on ``lengths``' device."""
    steps = torch.arange(frames, device=lengths.device)
    return (steps[None] < lengths[:, None]).unsqueeze(1).to(dtype)
