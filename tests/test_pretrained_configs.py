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


def test_a_new_speaker_extends_the_pretrained_ids_and_grows_the_prior_table(tmp_path):
    """Stage 3 keeps the pretrained ids and numbers the new speakers after them; stage 7's prior start has the table
    grown by their rows (each at the trained speakers' mean, <unk>'s untrained row left out) and the size in
    finetune_prior.yaml. A pretrained speaker whose id moved is refused."""
    import pytest
    import torch
    import yaml

    from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, read_table, write_table
    from espnet2_glow_wavegan.recipe.pretrained import SPEAKER_TABLE, grow_speakers
    from espnet2_glow_wavegan.recipe.speaker_info import write_sids

    out = tmp_path / "pretrained"
    (out / "tts").mkdir(parents=True)
    table = torch.tensor([[100.0, 100.0], [1.0, 2.0], [3.0, 6.0]])
    torch.save({SPEAKER_TABLE: table, "tts.generator.prior.w": torch.ones(2)}, out / "tts/model.pth")
    write_table(out / "spk2sid", {"<unk>": "0", "A": "1", "B": "2"})
    (out / "finetune_prior.yaml").write_text("# header\n" + yaml.safe_dump(
        {"tts_conf": {"prior_params": {"spks": 3, "spk_embed_dim": 8}}, "max_epoch": 2}))
    dump = tmp_path / "dump"
    for name, speakers in (("train", {"u1": "D", "u2": "B", "u3": "C"}), ("test", {"t1": "E", "t2": "C"})):
        write_table(dump / name / "utt2spk", speakers)
    write_sids(dump, "train", ["train", "test"], out / "spk2sid")
    assert read_table(dump / "spk2sid") == {"<unk>": "0", "A": "1", "B": "2", "C": "3", "D": "4"}
    assert read_table(dump / "test/utt2sid") == {"t1": "0", "t2": "3"}  # E: unseen, voiced through <unk>

    grow_speakers(out, dump / "spk2sid")
    grown = torch.load(out / "prior_init.pth", weights_only=True)
    assert torch.equal(grown[SPEAKER_TABLE][:3], table)
    assert torch.equal(grown[SPEAKER_TABLE][3:], torch.tensor([[2.0, 4.0], [2.0, 4.0]]))
    config = yaml.safe_load((out / "finetune_prior.yaml").read_text())
    assert config["tts_conf"]["prior_params"] == {"spks": 5, "spk_embed_dim": 8} and config["max_epoch"] == 2
    assert (out / "finetune_prior.yaml").read_text().startswith("# header\n")

    write_table(dump / "spk2sid", {"<unk>": "0", "A": "2", "B": "1"})
    with pytest.raises(DataError, match="A, B have other ids"):
        grow_speakers(out, dump / "spk2sid")
