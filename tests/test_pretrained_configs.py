"""Fine-tuning configs on top of a pretrained model's training config (recipe/pretrained.py)."""

from espnet2_glow_wavegan.recipe.pretrained import finetune_config

PRETRAINED = {
    "init_param": ["exp/old/model.pth:tts:tts"],  # run-specific: not carried into the fine-tuning
    "optim_conf": {"lr": 1.0e-3, "betas": [0.8, 0.99], "weight_decay": 0.0},
    "tts_conf": {"adversarial_start_steps": 300, "lambda_mel": 45.0,
                 "generator_params": {"encoder": {"type": "mel_vae"}, "latent_dim": 64}},
    "freeze_param": [],
    "max_epoch": 100,
}


def test_a_finetuning_file_changes_one_setting_and_keeps_the_rest_of_its_section():
    config = finetune_config(PRETRAINED, {"tts_conf": {"adversarial_start_steps": 0}, "optim_conf": {"lr": 1.0e-4},
                                          "freeze_param": ["tts.generator.prior.text_encoder"], "max_epoch": 5})
    assert "init_param" not in config
    assert config["tts_conf"] == {"adversarial_start_steps": 0, "lambda_mel": 45.0,
                                  "generator_params": {"encoder": {"type": "mel_vae"}, "latent_dim": 64}}
    assert config["optim_conf"] == {"lr": 1.0e-4, "betas": [0.8, 0.99], "weight_decay": 0.0}
    assert config["freeze_param"] == ["tts.generator.prior.text_encoder"] and config["max_epoch"] == 5  # replaced
    assert PRETRAINED["tts_conf"]["adversarial_start_steps"] == 300  # the pretrained config is left as it was
