"""Register TTS classes in ESPnet's model registries, without an ESPnet plugin API.

ESPnet keeps its TTS classes in two module-level ``ClassChoices`` objects:
``espnet2.tasks.gan_tts.tts_choices`` (training, ``--tts <name>``) and
``espnet2.tasks.tts.tts_choices`` (``Text2Speech`` builds every model through
``TTSTask``). Both parsers freeze their ``choices`` when built, so a class must
be in the registry before ``main()`` runs, and stock entry points never import
a plugin. We therefore add the classes right after either task module finishes
executing, through an import hook that the ``espnet2_glow_wavegan.pth`` file
installs at interpreter start-up. Nothing here imports torch or espnet: the
hook costs a dictionary look-up per import until ESPnet's task modules load. What
it then changes in ESPnet is in :mod:`espnet2_glow_wavegan.espnet_patches`.

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
                _add(module, key, cls, replace=replace)


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


def _add(module, key: str, target: Union[str, type], replace: bool = False) -> None:
    from espnet2_glow_wavegan import espnet_patches

    try:
        cls = _resolve(target)
    except Exception as e:  # a broken plugin must not break ESPnet itself
        logging.warning(
            "espnet2_glow_wavegan: could not import TTS class '%s' (%s) for %s: %s: %s",
            key, _describe(target), module.__name__, type(e).__name__, e,
        )
        return
    espnet_patches.add_to_choices(module, key, cls, replace=replace)


def _register_all_into(module) -> None:
    """Apply the ESPnet patches to a task module that has just loaded (espnet2_glow_wavegan.espnet_patches)."""
    from espnet2_glow_wavegan import espnet_patches

    with _lock:
        _load_entry_points()
        for key, target in list(_registered.items()):
            _add(module, key, target)
        espnet_patches.wrap_build_model(module)
        espnet_patches.warn_on_transliteration(module)


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
