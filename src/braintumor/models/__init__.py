"""Every network of the project, registered by name.

- ``unet.py``: segmenters ``unet``, ``monai-unet``, ``attention-unet``, ``basic-unet``, ``dynunet``
- ``classifiers.py``: custom CNNs (``cnn-small``, ``cnn-deep``)
- ``backbones.py``: ``resnet18/34/50``, ``densenet121`` (MONAI) and ``vgg16/19[-bn]``
- ``pretrained.py``: torchvision-layout ImageNet weights from a local file
- ``heads.py``: freeze everything but the classification head
- ``network.py``: build a network from its ``ModelConfig``, or rebuild a trained one from its weights
- ``weights.py``: weights as ``.safetensors`` + JSON metadata (never unpickled)

This package never imports ``braintumor.data``.
"""

from __future__ import annotations

from braintumor.models import backbones, classifiers, unet  # noqa: F401  (registers the models)
from braintumor.models.heads import freeze_backbone, head_name, unfreeze
from braintumor.models.pretrained import (
    LoadReport,
    adapt_first_conv,
    load_pretrained,
    torchvision_to_monai_keys,
)
from braintumor.models.registry import (
    MODELS,
    ModelArgumentError,
    ModelInfo,
    count_parameters,
    create_model,
    list_models,
    model_info,
    register_model,
)

__all__ = [
    "MODELS",
    "LoadReport",
    "ModelArgumentError",
    "ModelInfo",
    "adapt_first_conv",
    "count_parameters",
    "create_model",
    "freeze_backbone",
    "head_name",
    "list_models",
    "load_pretrained",
    "model_info",
    "register_model",
    "torchvision_to_monai_keys",
    "unfreeze",
]
