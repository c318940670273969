"""Load ESPnet TTS model files without running pickled code.

ESPnet's ``build_model_from_file`` (used by ``Text2Speech``) calls
``torch.load(..., weights_only=False)``, which executes any code a crafted
file carries, and loads the state dict with ``strict=False``, so a file from
another configuration loads partly and silently. :func:`check_model_file`
opens the file with ``weights_only=True`` first (a malicious file is refused
before ESPnet touches it; a truncated or corrupt one is named), and
:func:`safe_text2speech` builds ``Text2Speech`` after that check and verifies
that every model parameter came from the file.
"""

import pickle
import zipfile
from pathlib import Path
from typing import Dict, Union

import torch


class ModelFileError(ValueError):
    """A model file that is unsafe, unreadable, or does not fit its config."""


def check_model_file(model_file: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """Return the state dict of ``model_file``, read with weights-only unpickling.

    Raises:
        ModelFileError: the file is missing, truncated/corrupt, or holds objects
            other than tensors and plain containers (it would run code if unpickled).
    """
    path = Path(model_file)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file does not exist")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path}: model file is empty")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ModelFileError(
            f"{path}: refused to load: the file holds objects that are not plain weights and "
            f"unpickling them could run arbitrary code ({str(e).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise ModelFileError(f"{path}: not a readable PyTorch model file (truncated or corrupt?): {e}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state


def safe_text2speech(model_file: Union[str, Path], train_config: Union[str, Path, None] = None, **kwargs):
    """ESPnet ``Text2Speech`` for ``model_file``, checked first (see module docstring)."""
    from espnet2.bin.tts_inference import Text2Speech

    state = check_model_file(model_file)
    try:
        t2s = Text2Speech(train_config=train_config, model_file=model_file, **kwargs)
    except ValueError as e:  # e.g. our models' own check that the weights fit the config
        raise ModelFileError(f"{model_file}: does not match its config: {e}") from None
    expected = set(t2s.model.state_dict())
    missing = sorted(expected - set(state))
    if missing:
        raise ModelFileError(
            f"{model_file}: does not match its config ({len(missing)} parameters missing, e.g. {missing[:3]})"
        )
    return t2s


def packed_text2speech(packed_model: Union[str, Path], unpack_dir: Union[str, Path], **kwargs):
    """``Text2Speech`` of a zip written by ``espnet2.bin.pack`` (the recipes' stage 10), unpacked into
    ``unpack_dir`` by ESPnet's own ``unpack`` (offline: no espnet_model_zoo), checked as above."""
    from espnet2.main_funcs.pack_funcs import unpack

    if not Path(packed_model).is_file():
        raise ModelFileError(f"{packed_model}: no such file")
    try:
        files = unpack(str(packed_model), str(unpack_dir))
    except (zipfile.BadZipFile, KeyError, RuntimeError) as e:
        raise ModelFileError(f"{packed_model}: not a packed ESPnet model ({e})") from None
    return safe_text2speech(files["model_file"], files["train_config"], **kwargs)
