"""What espnet2_glow_wavegan.espnet_patches relies on in ESPnet: a release that changes it fails here, by name.

Each test reads the installed ESPnet (its objects, and for call paths its source) for one
behaviour that a patch in espnet_patches.py names; the end-to-end effect of the patches is
tested elsewhere (registration, Text2Speech, the CLI, training).
"""

import inspect

import espnet2.bin.tts_inference as tts_inference
import espnet2.tasks.gan_tts as gan_tts
import espnet2.tasks.tts as tts
import pytest
from espnet2.tasks.abs_task import AbsTask
from espnet2.train.class_choices import ClassChoices
from espnet2.train.gan_trainer import GANTrainer

from espnet2_glow_wavegan import espnet_patches


@pytest.mark.parametrize("module", [gan_tts, tts], ids=["gan_tts", "tts"])
def test_add_to_choices_relies_on_module_level_class_choices(module):
    """add_to_choices: a module-level ClassChoices ``tts_choices`` whose ``classes`` dict is read at use."""
    assert isinstance(module.tts_choices, ClassChoices) and isinstance(module.tts_choices.classes, dict)
    assert "glow_wavegan" in module.tts_choices.classes and "wavegan_vae" in module.tts_choices.classes
    task = module.GANTTSTask if module is gan_tts else module.TTSTask
    assert "tts_choices.get_class(args.tts)" in inspect.getsource(task.build_model.__wrapped__)


@pytest.mark.parametrize("task", [gan_tts.GANTTSTask, tts.TTSTask], ids=["GANTTSTask", "TTSTask"])
def test_wrap_build_model_relies_on_build_model_being_every_models_way_in(task):
    """wrap_build_model: ``build_model(cls, args)`` in the class body, used by training and by Text2Speech."""
    assert "build_model" in vars(task) and getattr(task.build_model, "_glow_wavegan", False)
    assert list(inspect.signature(task.build_model).parameters) == ["args"]
    assert "cls.build_model(args" in inspect.getsource(AbsTask.main_worker)
    assert "cls.build_model(args" in inspect.getsource(AbsTask.build_model_from_file)


def test_warn_on_transliteration_relies_on_text2speech_preprocessing_raw_text_under_a_dummy_key():
    """warn_on_transliteration: Text2Speech builds its preprocessing through TTSTask (train=False) and calls it
    with the raw text under '<dummy>'."""
    assert getattr(tts.TTSTask.build_preprocess_fn, "_glow_wavegan", False)
    assert "TTSTask.build_preprocess_fn(train_args, False)" in inspect.getsource(tts_inference.Text2Speech.__init__)
    assert 'self.preprocess_fn("<dummy>", dict(text=text))' in inspect.getsource(tts_inference.Text2Speech.__call__)


def test_the_cli_classes_rely_on_inference_looking_them_up_in_its_module():
    """run_espnet_inference: inference() builds Text2Speech and reads through TTSTask, both module globals."""
    source = inspect.getsource(tts_inference.inference)
    assert "Text2Speech.from_pretrained(" in source
    assert "TTSTask.build_streaming_iterator(" in source and "TTSTask.build_preprocess_fn(" in source
    assert "tts_inference.Text2Speech" not in source  # looked up by name, not through an import alias
    text2speech, task = espnet_patches.cli_classes()
    assert issubclass(text2speech, tts_inference.Text2Speech) and issubclass(task, tts_inference.TTSTask)


def test_the_cli_relies_on_text2speech_forwarding_noise_scale_to_vits_only():
    """SynthesisText2Speech adds the knobs for glow_wavegan: ESPnet's Text2Speech sets them for VITS-type models only."""
    source = inspect.getsource(tts_inference.Text2Speech.__init__)
    assert "noise_scale=noise_scale" in source and "isinstance(self.tts, VITS)" in source


def test_check_model_file_is_needed_because_espnet_unpickles_with_weights_only_false():
    assert "weights_only=False" in inspect.getsource(AbsTask.build_model_from_file)


def test_the_stand_in_discriminator_relies_on_the_grad_scaler_calls_per_turn():
    """NoDiscriminator gets (zero) gradients: ESPnet unscales and steps the turn's optimiser through the scaler."""
    source = inspect.getsource(GANTrainer.train_one_epoch)
    assert "scaler.unscale_(optimizer)" in source and "scaler.step(optimizer)" in source
    assert "autocast(scaler is not None)" in source  # use_amp: CUDA autocast, float16 (no dtype given)
