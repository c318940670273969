"""Speaker condition shared by the WaveGAN decoder and the flow prior."""

from typing import Optional

import torch


class SpeakerCondition(torch.nn.Module):
    """Global condition g (B, global_channels, 1) from speaker ids and/or speaker embeddings.

    With both inputs configured, g is the sum of the id embedding and the
    projected (L2-normalised) external embedding. With neither, g is None.
    """

    def __init__(self, spks: Optional[int] = None, spk_embed_dim: Optional[int] = None, global_channels: int = -1):
        super().__init__()
        if (spks or spk_embed_dim) and global_channels <= 0:
            raise ValueError("global_channels must be > 0 when spks or spk_embed_dim is set")
        self.spks = spks or None
        self.spk_embed_dim = spk_embed_dim or None
        self.channels = global_channels if (spks or spk_embed_dim) else -1
        if spks:
            self.global_emb = torch.nn.Embedding(spks, global_channels)
        if spk_embed_dim:
            self.spemb_proj = torch.nn.Linear(spk_embed_dim, global_channels)

    def forward(
        self, sids: Optional[torch.Tensor] = None, spembs: Optional[torch.Tensor] = None
    ) -> Optional[torch.Tensor]:
        """Args: sids (B,) or (B, 1); spembs (B, spk_embed_dim). Returns g or None."""
        g = None
        if self.spks:
            if sids is None:
                raise ValueError(f"this model has a speaker table (spks={self.spks}): pass sids")
            sids = sids.view(-1).long()
            # Checked at synthesis; in training the ids come from the recipe's spk2sid, and
            # reading them back to check would stall every step.
            if not self.training and ((sids < 0) | (sids >= self.spks)).any():
                raise ValueError(
                    f"speaker id {sids.tolist()} is outside the speaker table 0..{self.spks - 1} "
                    "(spk2sid of the training data; 0 is <unk>)"
                )
            g = self.global_emb(sids).unsqueeze(-1)
        if self.spk_embed_dim:
            if spembs is None:
                raise ValueError(
                    f"this model takes speaker embeddings (spk_embed_dim={self.spk_embed_dim}): pass spembs"
                )
            if spembs.size(-1) != self.spk_embed_dim:
                raise ValueError(
                    f"speaker embedding has {spembs.size(-1)} dimensions, the model takes {self.spk_embed_dim}"
                )
            if not self.training and not torch.isfinite(spembs).all():
                raise ValueError("speaker embedding contains NaN or Inf")
            g_ = self.spemb_proj(torch.nn.functional.normalize(spembs.view(-1, self.spk_embed_dim))).unsqueeze(-1)
            g = g_ if g is None else g + g_
        return g
