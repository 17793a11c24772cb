"""The forward pass shared by training's evaluation and inference (both import it; it imports neither).

- ``forward.py``: bf16 autocast on CPU, a probability threshold as a logit
- ``tta.py``: flip test-time augmentation (torch and numpy), flip-variance uncertainty figures
"""
