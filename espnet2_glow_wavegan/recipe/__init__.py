"""Data preparation and formatting steps of the recipes (egs2/*/tts1), callable from bash."""
