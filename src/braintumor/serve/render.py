"""PNG layers of one analysed slice, as data URLs, for the page and API clients.

Display layers share one size: the slice upscaled (nearest neighbour) so that its longer side is
at least 256 px, as the CLI's overlays are. The page stacks them; API clients can too.

- ``image``: the slice in grayscale (1-99 % window; FLAIR channel of 3-channel slices), RGB.
- ``outline``: the predicted mask's outline in red on transparency (RGBA).
- ``fill``: the predicted mask filled in translucent red (RGBA).
- ``gradcam``: the Grad-CAM heat map (jet colours, alpha rising with heat; RGBA), or None.
- ``overlay``: the CLI overlay, outline and caption burnt in (RGB); images and tumour slices.
- ``mask``: the mask at the slice's own size, {0, 255} grayscale (the download).

Without a mask (a classify-only bundle) ``outline``, ``fill`` and ``mask`` are None.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from PIL import Image

from braintumor.inference.outputs import MIN_OVERLAY_SIDE, overlay_image
from braintumor.inference.overlay import outline, to_gray_uint8
from braintumor.inference.results import SliceResult

OUTLINE_RGB = (255, 40, 40)
FILL_RGBA = (255, 40, 40, 110)
PNG_LEVEL = 3  # zlib level: these PNGs are made per request, so speed matters more than bytes


def png_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 H×W, H×W×3 or H×W×4 array as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def upscale_factor(shape: tuple[int, ...]) -> int:
    return max(1, math.ceil(MIN_OVERLAY_SIDE / max(shape[:2])))


def _up(array: np.ndarray, factor: int) -> np.ndarray:
    return array.repeat(factor, 0).repeat(factor, 1) if factor > 1 else array


def _rgba(mask: np.ndarray, colour: tuple[int, ...]) -> np.ndarray:
    out = np.zeros((*mask.shape, 4), np.uint8)
    out[mask] = colour
    return out


def heat_rgba(heat: np.ndarray) -> np.ndarray:
    """H×W [0,1] heat -> H×W×4 uint8: jet colours, alpha 0.6 × heat (as the CLI's blend)."""
    from matplotlib import colormaps

    h = np.clip(heat, 0, 1)
    rgba = colormaps["jet"](h)
    rgba[..., 3] = 0.6 * h
    return (rgba * 255).round().astype(np.uint8)


def slice_layers(
    image: np.ndarray, result: SliceResult, with_overlay: bool, with_mask: bool = True
) -> dict[str, str | None]:
    """The data URLs of one slice (see the module doc). ``image`` is H×W or H×W×C, any dtype;
    ``with_mask=False`` (no segmenter) leaves the mask layers None."""
    factor = upscale_factor(image.shape)
    gray = _up(to_gray_uint8(image), factor)
    layers: dict[str, str | None] = {
        "image": data_url(png_bytes(np.repeat(gray[..., None], 3, axis=2))),
        "outline": None,
        "fill": None,
        "gradcam": None,
        "overlay": data_url(png_bytes(overlay_image(image, result))) if with_overlay else None,
        "mask": None,
    }
    if with_mask:
        mask = result.mask if result.mask is not None else np.zeros(image.shape[:2], np.uint8)
        mask_up = _up(mask > 0, factor)
        width = max(1, max(mask_up.shape) // 256)
        layers["outline"] = data_url(png_bytes(_rgba(outline(mask_up, width), (*OUTLINE_RGB, 255))))
        layers["fill"] = data_url(png_bytes(_rgba(mask_up, FILL_RGBA)))
        layers["mask"] = data_url(png_bytes((mask > 0).astype(np.uint8) * 255))
    if result.heatmap is not None:
        layers["gradcam"] = data_url(png_bytes(_up(heat_rgba(result.heatmap), factor)))
    return layers
