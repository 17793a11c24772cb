"""Inference: preprocess files exactly as in training, predict masks and classes."""
