"""Lightning modules: one for segmentation, one for classification, sharing optimisation code."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from braintumor.config import ModelConfig, TrainConfig, from_dict
from braintumor.evaluation import ClassificationAccumulator, SegmentationAccumulator
from braintumor.models import freeze_backbone, model_info, unfreeze
from braintumor.models.network import build_network
from braintumor.training.augment import fade_lesions, random_affine, replace_missing_modalities
from braintumor.training.losses import create_loss
from braintumor.training.optim import create_optimizer, create_scheduler


class _BaseModule(L.LightningModule):
    """Network, loss, optimiser and channels_last handling shared by both tasks.

    Hyperparameters are plain dicts (``model``, ``train``, ``in_channels``, ``n_outputs``,
    ``classes``, ``coord_channels``, ``stacked_slices``) so Lightning checkpoints load with
    ``weights_only=True``. ``coord_channels`` counts the ``roi_coords`` position channels that end
    each input; the batched augmentation leaves them alone. ``stacked_slices`` counts the slices of
    a 2.5D input (``data.context_slices``), for the missing-modality augmentation.
    """

    monitor = "val_loss"

    def __init__(
        self,
        model: dict[str, Any],
        train: dict[str, Any],
        in_channels: int,
        n_outputs: int,
        classes: list[str],
        coord_channels: int = 0,
        stacked_slices: int = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model_cfg = from_dict(ModelConfig, model, "model")
        self.train_cfg = from_dict(TrainConfig, train, "train")
        self.classes = classes
        self.coord_channels = coord_channels
        self.stacked_slices = stacked_slices
        self.net = build_network(self.model_cfg, in_channels, n_outputs)
        self.loss_fn = create_loss(self.train_cfg.loss)
        if self.train_cfg.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.train_cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Batched random affine on the device for training batches (see ``augment.py``)."""
        if self.training and self.train_cfg.augment and isinstance(batch, dict):
            n_image = batch["image"].shape[1] - self.coord_channels
            image, coords = batch["image"][:, :n_image], batch["image"][:, n_image:]
            image, mask = random_affine(image, batch.get("mask"))
            cfg = self.train_cfg
            if cfg.missing_modality_prob > 0 and image.shape[1] > self.stacked_slices:
                image = replace_missing_modalities(
                    image,
                    cfg.modality_reference_channel,
                    cfg.missing_modality_prob,
                    slices=self.stacked_slices,
                )
            if cfg.lesion_fade_prob > 0 and mask is not None:
                image = fade_lesions(image, mask, cfg.lesion_fade_prob)
            if self.coord_channels:
                # the crop of a rotated or zoomed slice still sits where the box was
                image = torch.cat([image, coords], dim=1)
            batch = {**batch, "image": image}
            if mask is not None:
                batch["mask"] = mask
        return batch

    def configure_optimizers(self) -> Any:
        optimizer = create_optimizer(self.parameters(), self.train_cfg)
        scheduler = create_scheduler(optimizer, self.train_cfg, self.monitor)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}


class SegmentationModule(_BaseModule):
    """Binary tumour segmentation: logits B×1×H×W, sigmoid > 0.5 is tumour."""

    monitor = "val_dice"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.val_metrics = SegmentationAccumulator(store_masks=False, compute_hd95=False)  # logs Dice only

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self(batch["image"])
        loss = self.loss_fn(logits.float(), batch["mask"].float())
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self(batch["image"]).float()
        loss = self.loss_fn(logits, batch["mask"].float())
        self.log("val_loss", loss, prog_bar=True, on_epoch=True, batch_size=len(logits), sync_dist=True)
        pred = (logits > 0).to(torch.uint8).cpu()
        self.val_metrics.add(pred, batch["mask"].cpu(), batch["patient_id"], batch["sample_id"])

    def on_validation_epoch_end(self) -> None:
        summary = self.val_metrics.summary()
        self.log("val_dice", float(summary["dice_per_patient_mean"]), prog_bar=True, sync_dist=True)
        self.log("val_dice_slice", float(summary["dice_per_slice_mean"]), sync_dist=True)
        self.val_metrics.reset()


class ClassificationModule(_BaseModule):
    """Whole-slice or ROI classification: logits B×K."""

    monitor = "val_accuracy"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.val_metrics = ClassificationAccumulator(self.classes, inputs="logits")
        self._frozen = False

    def on_train_epoch_start(self) -> None:
        """Freeze the backbone for ``freeze_epochs``, then unfreeze at a lower learning rate."""
        epochs = self.train_cfg.freeze_epochs
        if epochs <= 0 or model_info(self.model_cfg.name).head is None:
            return
        if self.current_epoch < epochs and not self._frozen:
            freeze_backbone(self.net, self.model_cfg.name)
            self._frozen = True
        elif self.current_epoch >= epochs and self._frozen:
            unfreeze(self.net)
            self._frozen = False
            for optimizer in self.trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] *= self.train_cfg.unfreeze_lr_factor

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["backbone_frozen"] = self._frozen

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resume in the phase the run was in: frozen again (a fresh network is trainable), so the
        unfreeze and its lower learning rate still come at ``freeze_epochs``."""
        self._frozen = bool(checkpoint.get("backbone_frozen", False))
        if self._frozen:
            freeze_backbone(self.net, self.model_cfg.name)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self(batch["image"])
        loss = self.loss_fn(logits.float(), batch["label"])
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self(batch["image"]).float()
        loss = self.loss_fn(logits, batch["label"])
        self.log("val_loss", loss, prog_bar=True, on_epoch=True, batch_size=len(logits), sync_dist=True)
        self.val_metrics.add(logits.cpu(), batch["label"].cpu(), batch["sample_id"])

    def on_validation_epoch_end(self) -> None:
        report = self.val_metrics.report()
        self.log("val_accuracy", float(report["accuracy"]), prog_bar=True, sync_dist=True)
        self.log("val_macro_f1", float(report["macro_f1"]), sync_dist=True)
        self.val_metrics.reset()


def module_for(task: str) -> type[_BaseModule]:
    """The Lightning module class of a task (``segment`` or ``classify``)."""
    modules: dict[str, type[_BaseModule]] = {"segment": SegmentationModule, "classify": ClassificationModule}
    if task not in modules:
        raise ValueError(f"train.task={task!r}; valid: {', '.join(modules)}")
    return modules[task]


def unwrap(module: nn.Module) -> nn.Module:
    """The bare network of a Lightning module (for export)."""
    return module.net if isinstance(module, _BaseModule) else module
