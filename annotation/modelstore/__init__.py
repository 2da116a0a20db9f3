"""Trained models of a project (DynaMITe checkpoints, EXITS generators): upload, import, default."""
