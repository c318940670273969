"""Register TTS classes in ESPnet's model registries, without an ESPnet plugin API.

ESPnet keeps its TTS classes in two module-level ``ClassChoices`` objects:
``espnet2.tasks.gan_tts.tts_choices`` (training, ``--tts <name>``) and
``espnet2.tasks.tts.tts_choices`` (``Text2Speech`` builds every model through
``TTSTask``). Both parsers freeze their ``choices`` when built, so a class must
be in the registry before ``main()`` runs, and stock entry points never import
a plugin. We therefore add the classes right after either task module finishes
executing, through an import hook that the ``espnet2_glow_wavegan.pth`` file
installs at interpreter start-up. Nothing here imports torch or espnet: the
hook costs a dictionary look-up per import until ESPnet's task modules load.

Classes come from three places, all applied the same way:

* this package's own models (``BUILTIN_MODELS``);
* entry points in the group ``espnet2_glow_wavegan.tts`` of any installed
  distribution (``my_tts = my_pkg.model:MyTTS``), which is how another package
  makes its classes visible to stock ESPnet entry points;
* ``register(name, cls)`` calls in the running process.
"""

import importlib
import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from typing import Dict, Union

# ESPnet modules holding a ``tts_choices`` registry.
TASK_MODULES = ("espnet2.tasks.gan_tts", "espnet2.tasks.tts")
ENTRY_POINT_GROUP = "espnet2_glow_wavegan.tts"

# This package's models: name -> "module:Class" (imported when ESPnet's tasks load).
BUILTIN_MODELS: Dict[str, str] = {
    "wavegan_vae": "espnet2_glow_wavegan.wavegan.wavegan_vae:WaveGANVAE",
    "glow_wavegan": "espnet2_glow_wavegan.glow.glow_wavegan:GlowWaveGAN",
}

_registered: Dict[str, Union[str, type]] = {}
_entry_points_loaded = False
_lock = threading.RLock()


def register(name: str, cls: Union[str, type], *, replace: bool = False) -> None:
    """Make ``cls`` selectable as ``tts: <name>`` in ESPnet's TTS registries.

    Args:
        name: Registry key (case-insensitive, as in ESPnet).
        cls: An ``AbsGANTTS``/``AbsTTS`` subclass, or ``"module:Class"`` to import
            lazily when ESPnet's task modules load.
        replace: Allow replacing a different class already under ``name``.
            Registering the same class again is always a no-op.

    Raises:
        ValueError: ``name`` is taken by another class and ``replace`` is False.
    """
    key = name.lower()
    with _lock:
        previous = _registered.get(key)
        if previous is not None and not replace and not _same_target(previous, cls):
            raise ValueError(
                f"TTS name '{key}' is already registered for {_describe(previous)}; "
                f"pass replace=True to register {_describe(cls)} instead"
            )
        _registered[key] = cls
        for module_name in TASK_MODULES:
            module = sys.modules.get(module_name)
            if module is not None and hasattr(module, "tts_choices"):
                _add_to_choices(module, key, cls, replace=replace)


def registered_names() -> Dict[str, str]:
    """Names this package adds to ESPnet (built-in, entry points, explicit)."""
    with _lock:
        _load_entry_points()
        return {k: _describe(v) for k, v in _registered.items()}


def install_import_hook() -> None:
    """Register into task modules already imported and hook the ones to come."""
    with _lock:
        for name, target in BUILTIN_MODELS.items():
            _registered.setdefault(name, target)
        if not any(isinstance(f, _TaskModuleFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _TaskModuleFinder())
        for module_name in TASK_MODULES:
            module = sys.modules.get(module_name)
            if module is not None and hasattr(module, "tts_choices"):
                _register_all_into(module)


def _resolve(target: Union[str, type]) -> type:
    if isinstance(target, type):
        return target
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _describe(target: Union[str, type]) -> str:
    if isinstance(target, type):
        return f"{target.__module__}:{target.__qualname__}"
    return target


def _same_target(a: Union[str, type], b: Union[str, type]) -> bool:
    return _describe(a) == _describe(b)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = ep.name.lower()
        previous = _registered.get(key)
        if previous is not None and not _same_target(previous, ep.value):
            logging.warning(
                "espnet2_glow_wavegan: entry point '%s = %s' ignored: the name is taken by %s",
                ep.name, ep.value, _describe(previous),
            )
            continue
        _registered[key] = ep.value


def _add_to_choices(module, key: str, target: Union[str, type], replace: bool = False) -> None:
    choices = module.tts_choices
    try:
        cls = _resolve(target)
    except Exception as e:  # a broken plugin must not break ESPnet itself
        logging.warning(
            "espnet2_glow_wavegan: could not import TTS class '%s' (%s) for %s: %s: %s",
            key, _describe(target), module.__name__, type(e).__name__, e,
        )
        return
    if choices.base_type is not None and not issubclass(cls, choices.base_type):
        logging.warning(
            "espnet2_glow_wavegan: '%s' (%s) is not a %s; not added to %s",
            key, _describe(cls), choices.base_type.__name__, module.__name__,
        )
        return
    existing = choices.classes.get(key)
    if existing is not None and existing is not cls and not replace:
        # Never shadow one of ESPnet's own models (vits, jets, ...).
        logging.warning(
            "espnet2_glow_wavegan: '%s' already names %s in %s; not replaced by %s",
            key, _describe(existing), module.__name__, _describe(cls),
        )
        return
    choices.classes[key] = cls


def _register_all_into(module) -> None:
    with _lock:
        _load_entry_points()
        for key, target in list(_registered.items()):
            _add_to_choices(module, key, target)
        _hand_token_list_to_models(module)


# ESPnet's task classes in the task modules, whose build_model gets the token list.
TASK_CLASSES = ("GANTTSTask", "TTSTask")


def _hand_token_list_to_models(module) -> None:
    """Make the task's ``build_model`` give a built model the task's token list.

    ESPnet passes a TTS model only the vocabulary size; a model with a
    ``set_token_list(tokens)`` method (ours) also learns which ids are which symbol,
    e.g. to refuse text with nothing to speak. Training and ``Text2Speech`` both build
    models through ``build_model``; other models are left as they are.
    """
    for name in TASK_CLASSES:
        task = getattr(module, name, None)
        if task is None or "build_model" not in vars(task) or getattr(task.build_model, "_hands_token_list", False):
            continue
        build = task.build_model.__func__

        def build_model(cls, args, _build=build):
            model = _build(cls, args)
            _warn_amp_without_cuda(args)
            tts = getattr(model, "tts", None)
            token_list = getattr(args, "token_list", None)
            if hasattr(tts, "set_token_list") and isinstance(token_list, (list, tuple)):
                tts.set_token_list(list(token_list))
            return model

        build_model._hands_token_list = True
        build_model.__doc__ = build.__doc__
        task.build_model = classmethod(build_model)


def _warn_amp_without_cuda(args) -> None:
    """ESPnet's ``use_amp`` is CUDA's autocast and GradScaler: without CUDA it does nothing, silently."""
    if getattr(args, "use_amp", False) and not getattr(args, "collect_stats", False):
        import torch

        if not torch.cuda.is_available():
            logging.warning(
                "use_amp: true has no effect here: ESPnet's mixed precision (torch.cuda.amp autocast and "
                "GradScaler) needs CUDA, and this machine has none; training runs in float32"
            )


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the real loader, then adds our classes to the module's registry."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if hasattr(module, "tts_choices"):
            _register_all_into(module)

    def __getattr__(self, name):  # get_source, get_code, ... for inspect/linecache
        return getattr(self._loader, name)


class _TaskModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in TASK_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisteringLoader(spec.loader)
        return spec
