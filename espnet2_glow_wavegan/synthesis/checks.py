"""Synthesis input checks, written once for the torch model, the ONNX runtime and the CLIs (no torch here).

The messages name the input and its valid range; the ONNX runtime raises them before
onnxruntime sees the input, with the same words as ``GlowWaveGAN.inference``.
"""

import math
import unicodedata
from typing import Collection, Optional, Sequence, Tuple

# ESPnet token lists put <blank> at 0 and <unk> at 1 (espnet2.bin.tokenize_text --add_symbol).
UNK_ID = 1


def check_synthesis_knobs(noise_scale: float, length_scale: float, max_output_seconds: float) -> None:
    """Refuse synthesis settings outside their ranges, naming the knob and the range."""
    if not (math.isfinite(float(length_scale)) and float(length_scale) > 0):
        raise ValueError(f"length_scale must be a finite number > 0 (1: as trained, > 1: slower), got {length_scale}")
    if not (math.isfinite(float(noise_scale)) and float(noise_scale) >= 0):
        raise ValueError(
            f"noise_scale must be a finite number >= 0 (0: deterministic, 0.667: Glow-TTS' default), got {noise_scale}"
        )
    if not float(max_output_seconds) > 0:
        raise ValueError(f"max_output_seconds must be > 0, got {max_output_seconds}")


def refuse_language_ids(lids) -> None:
    """The models have no language table: language ids would be ignored, so they are refused."""
    if lids is not None:
        raise ValueError("lids: these models have no language table and cannot use language ids; leave them out "
                         "(a recipe: --use_lid false)")


def is_silent_token(token: str) -> bool:
    """A token that voices nothing: a special symbol, a space, or punctuation only."""
    if token in ("<blank>", "<unk>", "<space>", "<sos/eos>") or not token.strip():
        return True
    return all(unicodedata.category(c)[0] in "PZ" for c in token)


def check_token_ids(ids: Sequence[int], silent_ids: Collection[int]) -> None:
    """Refuse token ids with nothing to synthesise: empty, all unknown, or silent symbols only."""
    if len(ids) == 0:
        raise ValueError("the input text is empty after the text front end: nothing to synthesise")
    if all(i == UNK_ID for i in ids):
        raise ValueError(
            "every symbol of the input text is unknown to the model (all <unk>): check the language, "
            "the text cleaner and the g2p of the model's config"
        )
    if silent_ids and all(i in silent_ids for i in ids):
        raise ValueError(
            "the input text has nothing to speak after the text front end: only spaces, punctuation "
            "or unknown symbols"
        )


def output_length_error(seconds: float, length_scale: float, max_output_seconds: float, item: str = "") -> Optional[str]:
    """The message refusing an output of ``seconds`` over ``max_output_seconds``, or None when it fits."""
    if seconds <= max_output_seconds:
        return None
    return (f"{item}the output would last {seconds:.0f} s (length_scale {length_scale}), over max_output_seconds "
            f"= {max_output_seconds:g} s; pass a larger max_output_seconds (decode_conf or tts_conf) for longer audio")


def check_output_length(frames: int, hop: int, sampling_rate: int, length_scale: float, max_output_seconds: float,
                        item: str = "") -> None:
    """Refuse an output of ``frames`` latent frames longer than ``max_output_seconds`` (``item`` prefixes the message)."""
    error = output_length_error(frames * hop / sampling_rate, length_scale, max_output_seconds, item)
    if error:
        raise ValueError(error)


def check_speaker_inputs(spks: Optional[int], spk_embed_dim: Optional[int], sids: Optional[Sequence[int]] = None,
                         spembs_shape: Optional[Tuple[int, ...]] = None, spembs_finite: bool = True,
                         required: bool = True) -> None:
    """Refuse speaker inputs the model does not take, lacks or cannot read.

    Args:
        spks, spk_embed_dim: The model's speaker table size and embedding size (None or 0: none).
        sids: The speaker ids given (None: not given; an empty sequence: given, not to be read back).
        spembs_shape: The shape of the speaker embedding given (None: not given).
        spembs_finite: Whether every value of that embedding is finite.
        required: Refuse a speaker input the model takes and was not given.
    """
    if sids is not None and not spks:
        raise ValueError("this model has no speaker table (spks is not set in its config): it takes no sids")
    if spembs_shape is not None and not spk_embed_dim:
        raise ValueError("this model takes no speaker embedding (spk_embed_dim is not set in its config): it takes no spembs")
    if spks:
        if sids is None and required:
            raise ValueError(f"this model has a speaker table (spks={spks}): pass sids")
        if sids is not None and any(not 0 <= int(i) < spks for i in sids):
            raise ValueError(f"speaker id {[int(i) for i in sids]} is outside the speaker table 0..{spks - 1} "
                             "(spk2sid of the training data; 0 is <unk>)")
    if spk_embed_dim:
        if spembs_shape is None and required:
            raise ValueError(f"this model takes speaker embeddings (spk_embed_dim={spk_embed_dim}): pass spembs")
        if spembs_shape is not None and (not spembs_shape or spembs_shape[-1] != spk_embed_dim):
            raise ValueError(f"speaker embedding has {spembs_shape[-1] if spembs_shape else 0} dimensions, "
                             f"the model takes {spk_embed_dim}")
        if spembs_shape is not None and not spembs_finite:
            raise ValueError("speaker embedding contains NaN or Inf")


def check_durations(durations: Sequence[int], tokens: int) -> None:
    """Refuse given durations that are not one number of frames >= 0 per token."""
    if len(durations) != tokens or any(int(d) < 0 for d in durations):
        raise ValueError(
            f"durations must give a number of frames >= 0 for each of the {tokens} tokens, "
            f"got {len(durations)} values (min {min((int(d) for d in durations), default=0)})"
        )


def check_chunk_sizes(chunk_frames: int, first_chunk_frames: int) -> None:
    """Refuse streaming chunk sizes below one frame."""
    if chunk_frames < 1 or first_chunk_frames < 1:
        raise ValueError(f"chunk_frames and first_chunk_frames must be >= 1, got {chunk_frames} and {first_chunk_frames}")
