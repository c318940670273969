"""Small tensor helpers shared by the models."""

import contextlib

import torch
from espnet2.gan_tts.utils import get_segments


def frame_mask(lengths: torch.Tensor, frames: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 1, frames) mask, 1 on the first ``lengths[b]`` frames, on ``lengths``' device."""
    steps = torch.arange(frames, device=lengths.device)
    return (steps[None] < lengths[:, None]).unsqueeze(1).to(dtype)


def padded_segments(x: torch.Tensor, start_idxs: torch.Tensor, segment_size: int) -> torch.Tensor:
    """ESPnet's ``get_segments`` (B, C, T) -> (B, C, segment_size), with zeros past the end of ``x``."""
    shortfall = int((start_idxs + segment_size).max()) - x.size(-1)
    if shortfall > 0:
        x = torch.nn.functional.pad(x, (0, shortfall))
    return get_segments(x, start_idxs, segment_size)


def random_segment_starts(lengths: torch.Tensor, segment_size: int) -> torch.Tensor:
    """Uniform start frames (B,) of ``segment_size``-frame segments inside ``lengths``.

    Every start from 0 to ``length - segment_size`` can be drawn (ESPnet's
    ``get_random_segments`` never draws the last one); an item shorter than the
    segment starts at 0.
    """
    last = (lengths - segment_size).clamp(min=0)
    starts = (torch.rand(lengths.shape, device=lengths.device) * (last + 1)).long()
    return torch.minimum(starts, last)


def is_distributed() -> bool:
    """True inside a torch.distributed process group (ESPnet's DDP training)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def zero_touching(module: torch.nn.Module) -> torch.Tensor:
    """A zero that depends on every trainable parameter of ``module``.

    Added to a GAN turn's loss, it gives the parameters the turn does not train a zero
    gradient: DDP expects a gradient for every trainable parameter in each backward pass,
    and ESPnet's GANTrainer zeroes all gradients after every turn, so nothing else changes.
    """
    trainable = [p.reshape(-1)[0] for p in module.parameters() if p.requires_grad]
    if not trainable:
        return torch.zeros(())
    return torch.stack(trainable).sum() * 0.0


def check_finite(loss: torch.Tensor, stats: dict, model: torch.nn.Module, generator_turn: bool) -> None:
    """Stop training on a NaN/Inf loss, naming the turn, the step and the loss terms.

    ESPnet's GANTrainer only skips non-finite *gradients*, and only with grad_clip > 0;
    a non-finite loss would otherwise go on to corrupt the weights.
    """
    if not model.training:
        return
    model._train_turns = getattr(model, "_train_turns", 0) + 1
    if not torch.isfinite(loss).all():
        terms = ", ".join(f"{k}={float(v):.4g}" for k, v in stats.items())
        raise FloatingPointError(
            f"non-finite {'generator' if generator_turn else 'discriminator'} loss at training turn "
            f"{model._train_turns} of this run ({terms}). Resume from the last checkpoint with a lower "
            "learning rate, or look for broken audio in this run's batches."
        )


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module):
    """Run ``module`` in eval mode (no dropout) inside the block, then restore its mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
