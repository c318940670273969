"""Synthesis input checks shared by the torch model and the ONNX runtime (no torch here).

The messages name the input and its valid range; the ONNX runtime raises them before
onnxruntime sees the input, with the same words as ``GlowWaveGAN.inference``.
"""

import math
import unicodedata
from typing import Collection, Optional, Sequence

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
