"""Glow-TTS flow prior over the WaveGAN latent, and the TTS model ``glow_wavegan``."""
