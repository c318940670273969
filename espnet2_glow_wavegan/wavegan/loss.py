"""KL term that keeps the WaveGAN posterior close to N(0, I)."""

import torch


class StandardNormalKLLoss(torch.nn.Module):
    """KL(q(z|x) || N(0, I)) of a diagonal Gaussian, summed over channels, averaged over frames.

    The closed form is used (no sampling noise): per channel
    ``0.5 * (mean^2 + std^2) - log_std - 0.5``. The per-frame sum matches the
    scale of ESPnet's VITS KL term, so ``lambda_kl`` values compare directly.
    """

    def forward(self, mean: torch.Tensor, log_std: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            mean: Posterior mean (B, C, T).
            log_std: Posterior log standard deviation (B, C, T).
            mask: Valid frames (B, 1, T).

        Returns:
            Tensor: Scalar loss.
        """
        mean, log_std, mask = mean.float(), log_std.float(), mask.float()
        kl = 0.5 * (mean**2 + torch.exp(2.0 * log_std)) - log_std - 0.5
        return torch.sum(kl * mask) / torch.sum(mask).clamp(min=1.0)
