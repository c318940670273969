"""Speaker condition shared by the WaveGAN decoder and the flow prior."""

from typing import Optional

import torch

from espnet2_glow_wavegan.synthesis.checks import check_speaker_inputs


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
        # A part without a speaker table or embedding ignores that input (the model refuses what
        # none of its parts take). At synthesis the ids and values are checked; in training the
        # ids come from the recipe's spk2sid, and reading them back to check would stall every step.
        sids = sids if self.spks else None
        spembs = spembs if self.spk_embed_dim else None
        check_speaker_inputs(
            self.spks, self.spk_embed_dim,
            sids=None if sids is None else (() if self.training else sids.view(-1).tolist()),
            spembs_shape=None if spembs is None else tuple(spembs.shape),
            spembs_finite=self.training or spembs is None or bool(torch.isfinite(spembs).all()),
        )
        g = None
        if self.spks:
            g = self.global_emb(sids.view(-1).long()).unsqueeze(-1)
        if self.spk_embed_dim:
            g_ = self.spemb_proj(torch.nn.functional.normalize(spembs.view(-1, self.spk_embed_dim))).unsqueeze(-1)
            g = g_ if g is None else g + g_
        return g
