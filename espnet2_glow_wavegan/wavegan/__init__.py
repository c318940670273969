"""WaveGAN: the GAN-based VAE of Glow-WaveGAN (waveform -> z -> waveform)."""
