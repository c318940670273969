"""Small tensor helpers shared by the models."""

import contextlib
import logging

import torch


def frame_mask(lengths: torch.Tensor, frames: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 1, frames) mask, 1 on the first ``lengths[b]`` frames, on ``lengths``' device."""
    steps = torch.arange(frames, device=lengths.device)
    return (steps[None] < lengths[:, None]).unsqueeze(1).to(dtype)


def padded_segments(x: torch.Tensor, start_idxs: torch.Tensor, segment_size: int) -> torch.Tensor:
    """ESPnet's ``get_segments`` (B, C, T) -> (B, C, segment_size), with zeros past the end of ``x``.

    One gather on the device: no host synchronisation (``get_segments`` reads each start
    back to the host to slice).
    """
    steps = start_idxs.view(-1, 1, 1) + torch.arange(segment_size, device=x.device)  # (B, 1, segment_size)
    inside = steps < x.size(-1)
    index = torch.where(inside, steps, torch.zeros_like(steps)).expand(-1, x.size(1), -1)
    return torch.gather(x, 2, index) * inside.to(x.dtype)


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


# Under mixed precision, a run of this many non-finite turns in a row stops training: the
# GradScaler halves its scale at each one, so by then (2^16 -> 2^-4) the overflow is no longer
# the scale's doing but the model's.
MAX_CONSECUTIVE_NONFINITE_AMP_TURNS = 20


def autocast_active(device_type: str) -> bool:
    """True inside ``torch.autocast`` for ``device_type`` (ESPnet's ``use_amp`` on CUDA, or a CPU test)."""
    return torch.is_autocast_enabled(device_type)


def float32(device_type: str):
    """A block that computes in float32 whatever autocast is on outside it (cast its inputs with ``.float()``).

    For the numerically sensitive parts, as ESPnet's VITS keeps its mel loss and flow
    statistics: log-determinants, Gaussian log-likelihoods, KL, STFT/mel, inverse STFT.
    """
    return torch.autocast(device_type, enabled=False)


def check_finite(loss: torch.Tensor, stats: dict, model: torch.nn.Module, generator_turn: bool) -> None:
    """Stop training on a NaN/Inf loss, naming the turn, the step and the loss terms.

    ESPnet's GANTrainer only skips non-finite *gradients*, and only with grad_clip > 0;
    a non-finite loss would otherwise go on to corrupt the weights. Under mixed precision
    (``use_amp``), a non-finite loss is the GradScaler's business: its scaled gradients are
    non-finite too, so it skips the step and lowers the scale. Such a turn is logged, and
    only ``MAX_CONSECUTIVE_NONFINITE_AMP_TURNS`` of them in a row stop training.

    One host synchronisation per turn (reading the loss), at the end of the forward pass,
    where ESPnet's reporter reads every statistic anyway.
    """
    if not model.training:
        return
    model._train_turns = getattr(model, "_train_turns", 0) + 1
    if bool(torch.isfinite(loss).all()):
        model._nonfinite_amp_turns = 0
        return
    turn = "generator" if generator_turn else "discriminator"
    terms = ", ".join(f"{k}={float(v):.4g}" for k, v in stats.items())
    if autocast_active(loss.device.type):
        model._nonfinite_amp_turns = getattr(model, "_nonfinite_amp_turns", 0) + 1
        if model._nonfinite_amp_turns < MAX_CONSECUTIVE_NONFINITE_AMP_TURNS:
            logging.warning(
                f"non-finite {turn} loss at training turn {model._train_turns} under mixed precision ({terms}): "
                f"the GradScaler skips this step ({model._nonfinite_amp_turns} in a row; training stops at "
                f"{MAX_CONSECUTIVE_NONFINITE_AMP_TURNS})"
            )
            return
    raise FloatingPointError(
        f"non-finite {turn} loss at training turn {model._train_turns} of this run ({terms})"
        + (f", {MAX_CONSECUTIVE_NONFINITE_AMP_TURNS} turns in a row under mixed precision"
           if autocast_active(loss.device.type) else "")
        + ". Resume from the last checkpoint with a lower learning rate, or look for broken audio in this "
        "run's batches."
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
