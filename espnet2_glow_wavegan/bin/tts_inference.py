"""ESPnet's ``tts_inference`` with this package's models registered explicitly.

See :mod:`espnet2_glow_wavegan.bin.gan_tts_train` for when this is needed.
"""

import espnet2_glow_wavegan.registry as registry


def main(cmd=None):
    registry.install_import_hook()
    from espnet2.bin.tts_inference import main as espnet_main

    espnet_main(cmd)


if __name__ == "__main__":
    main()
