"""The plugin's classes reach ESPnet's stock entry points with no user code."""

import json
import textwrap

import pytest
import yaml


DUMMY_PLUGIN = '''
import torch
from espnet2.gan_tts.abs_gan_tts import AbsGANTTS


class DummyGANTTS(AbsGANTTS):
    """Test-only GAN-TTS class: one sample of silence per input token."""

    def __init__(self, idim, odim, sampling_rate=16000):
        super().__init__()
        self.generator = torch.nn.Linear(1, 1)
        self.discriminator = torch.nn.Linear(1, 1)
        self.fs = sampling_rate
        self.spks = self.langs = self.spk_embed_dim = None

    @property
    def require_raw_speech(self):
        return True

    @property
    def require_vocoder(self):
        return False

    def forward(self, text, text_lengths, feats, feats_lengths, forward_generator=True, **kw):
        raise NotImplementedError

    def inference(self, text, **kw):
        return {"wav": torch.zeros(text.numel())}
'''


@pytest.fixture
def dummy_plugin(tmp_path):
    """A second installed distribution that declares a TTS class by entry point."""
    site = tmp_path / "plugin_site"
    (site / "dummy_tts_plugin").mkdir(parents=True)
    (site / "dummy_tts_plugin" / "__init__.py").write_text(DUMMY_PLUGIN)
    dist = site / "dummy_tts_plugin-0.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dummy-tts-plugin\nVersion: 0.0.1\n")
    (dist / "entry_points.txt").write_text(
        "[espnet2_glow_wavegan.tts]\ndummy_gan_tts = dummy_tts_plugin:DummyGANTTS\n"
    )
    return {"PYTHONPATH": str(site)}


@pytest.mark.slow
def test_startup_hook_imports_neither_torch_nor_espnet(python_run):
    out = python_run(
        [
            "-c",
            "import sys, site, json; print(json.dumps({"
            "'torch': 'torch' in sys.modules, 'espnet2': 'espnet2' in sys.modules,"
            "'hook': 'espnet2_glow_wavegan.registry' in sys.modules}))",
        ]
    ).stdout
    state = json.loads(out.strip().splitlines()[-1])
    assert state == {"torch": False, "espnet2": False, "hook": True}


@pytest.mark.slow
def test_stock_gan_tts_train_lists_plugin_classes(python_run, dummy_plugin):
    out = python_run(["-m", "espnet2.bin.gan_tts_train", "--help"], env_extra=dummy_plugin).stdout
    tts_help = out[out.index("--tts {") :].split("}")[0]
    assert "vits" in tts_help  # ESPnet's own classes stay
    assert "dummy_gan_tts" in tts_help
    from espnet2_glow_wavegan.registry import BUILTIN_MODELS

    for name in BUILTIN_MODELS:
        assert name in tts_help


@pytest.mark.slow
def test_opt_out_variable_and_explicit_wrapper(python_run, dummy_plugin):
    env = dict(dummy_plugin, ESPNET2_GLOW_WAVEGAN_AUTOREGISTER="0")
    stock = python_run(["-m", "espnet2.bin.gan_tts_train", "--help"], env_extra=env).stdout
    assert "dummy_gan_tts" not in stock[stock.index("--tts {") :].split("}")[0]
    wrapped = python_run(
        ["-m", "espnet2_glow_wavegan.bin.gan_tts_train", "--help"], env_extra=env
    ).stdout
    assert "dummy_gan_tts" in wrapped[wrapped.index("--tts {") :].split("}")[0]


@pytest.mark.slow
def test_text2speech_builds_plugin_class_from_config(python_run, dummy_plugin, tmp_path):
    """Config written by the stock trainer; model built and run by stock Text2Speech."""
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("<blank>\n<unk>\na\nb\n<sos/eos>\n")
    config = tmp_path / "config.yaml"
    printed = python_run(
        [
            "-m", "espnet2.bin.gan_tts_train", "--print_config",
            "--tts", "dummy_gan_tts", "--token_type", "char", "--token_list", str(tokens),
        ],
        env_extra=dummy_plugin,
    ).stdout
    conf = yaml.safe_load(printed)
    assert conf["tts"] == "dummy_gan_tts"
    conf["token_list"] = ["<blank>", "<unk>", "a", "b", "<sos/eos>"]
    config.write_text(yaml.safe_dump(conf))
    script = textwrap.dedent(
        f"""
        from espnet2.bin.tts_inference import Text2Speech
        t2s = Text2Speech(train_config={str(config)!r})
        assert type(t2s.tts).__name__ == "DummyGANTTS", type(t2s.tts)
        wav = t2s("abba")["wav"]
        print("WAV", wav.numel(), t2s.fs)
        """
    )
    out = python_run(["-c", script], env_extra=dummy_plugin).stdout
    assert "WAV 4 16000" in out
    # The script itself imports no plugin: without the start-up hook, ESPnet cannot build the class.
    without_hook = python_run(["-c", script], env_extra=dict(dummy_plugin, ESPNET2_GLOW_WAVEGAN_AUTOREGISTER="0"),
                              check=False)
    assert without_hook.returncode != 0 and "dummy_gan_tts" in without_hook.stderr


def test_register_is_idempotent_and_refuses_silent_replacement():
    import espnet2.tasks.gan_tts as gan_tts_task
    import espnet2.tasks.tts as tts_task
    from espnet2.gan_tts.vits import VITS

    import espnet2_glow_wavegan

    class MyVITS(VITS):
        pass

    class OtherVITS(VITS):
        pass

    espnet2_glow_wavegan.register("My_VITS_Variant", MyVITS)
    espnet2_glow_wavegan.register("my_vits_variant", MyVITS)  # same class again: no-op
    for task in (gan_tts_task, tts_task):
        assert task.tts_choices.get_class("my_vits_variant") is MyVITS
    with pytest.raises(ValueError, match="already registered"):
        espnet2_glow_wavegan.register("my_vits_variant", OtherVITS)
    espnet2_glow_wavegan.register("my_vits_variant", OtherVITS, replace=True)
    assert gan_tts_task.tts_choices.get_class("my_vits_variant") is OtherVITS
    # ESPnet's own names are never shadowed by a plugin.
    espnet2_glow_wavegan.register("vits", MyVITS)
    assert gan_tts_task.tts_choices.get_class("vits") is VITS
