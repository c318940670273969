"""Glow-WaveGAN for ESPnet.

Importing this package (which the installed ``espnet2_glow_wavegan.pth`` does at
interpreter start-up unless ``ESPNET2_GLOW_WAVEGAN_AUTOREGISTER=0``) makes its
models available as ``tts: wavegan_vae`` and
``tts: glow_wavegan`` in ESPnet's GAN-TTS training and in ``Text2Speech``.
Use :func:`register` to add classes of your own the same way.
"""

from espnet2_glow_wavegan.registry import install_import_hook, register, registered_names

__version__ = "0.1.0"
__all__ = ["register", "registered_names", "safe_text2speech", "__version__"]


def safe_text2speech(model_file, train_config=None, **kwargs):
    """ESPnet ``Text2Speech`` after a weights-only check of ``model_file`` (see ``safe_load``)."""
    from espnet2_glow_wavegan.safe_load import safe_text2speech as _safe

    return _safe(model_file, train_config, **kwargs)

install_import_hook()
