"""ESPnet's ``gan_tts_train`` with this package's models registered explicitly.

The installed start-up hook already makes ``python -m espnet2.bin.gan_tts_train``
see them; this wrapper is for environments where ``.pth`` files are not
processed or the hook is disabled (``ESPNET2_GLOW_WAVEGAN_AUTOREGISTER=0``).
"""

import espnet2_glow_wavegan.registry as registry  # importing the package installs the hook


def main(cmd=None):
    registry.install_import_hook()
    from espnet2.bin.gan_tts_train import main as espnet_main

    espnet_main(cmd)


if __name__ == "__main__":
    main()
