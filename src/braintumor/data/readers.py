"""Decode image and mask files with errors that name the file and the problem.

Supported: PNG, JPEG, BMP, TIFF (PIL / tifffile) and the figshare MATLAB ``.mat`` files.
A pixel limit guards against decompression bombs.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from braintumor.data.preprocess import binarize_mask
from braintumor.errors import DataError

if TYPE_CHECKING:
    import tifffile

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MAT_SUFFIX = ".mat"
DEFAULT_MAX_PIXELS = 64_000_000
MAX_TIFF_PAGES = 4  # a slice is one page, or one per channel (channel-first)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file.

    Returns:
        H×W or H×W×C array in the file's dtype (uint8, uint16, int16, float32).

    Raises:
        DataError: missing, truncated or undecodable file, too many pixels, unexpected shape.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == MAT_SUFFIX:
        from braintumor.data.figshare import read_mat

        return read_mat(path).image
    if suffix in (".tif", ".tiff"):
        array = _read_tiff(path, max_pixels)
    elif suffix in IMAGE_SUFFIXES:
        array = _read_pil(path, max_pixels)
    else:
        raise DataError(path, f"unsupported file type {suffix!r}; expected one of {IMAGE_SUFFIXES}")
    return _check_shape(path, array)


def read_mask(
    path: str | Path,
    expected_shape: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode a binary mask to uint8 H×W with values {0, 1}.

    Accepted encodings are {0, 1} and {0, 255}; any other value is an error, as is a shape that
    differs from ``expected_shape`` (the image's H×W).
    """
    path = Path(path)
    if path.suffix.lower() == MAT_SUFFIX:
        from braintumor.data.figshare import read_mat

        array = read_mat(path).mask
    else:
        array = read_image(path, max_pixels)
    if array.ndim == 3:
        if not all(np.array_equal(array[..., 0], array[..., c]) for c in range(1, array.shape[2])):
            raise DataError(path, f"mask has {array.shape[2]} differing channels; expected one")
        array = array[..., 0]
    if expected_shape is not None and array.shape != tuple(expected_shape):
        raise DataError(
            path,
            f"mask shape {array.shape[0]}x{array.shape[1]} differs from its image "
            f"{expected_shape[0]}x{expected_shape[1]}; masks must match their image pixel for pixel",
        )
    return binarize_mask(path, array)


def _read_pil(path: Path, max_pixels: int) -> np.ndarray:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise DataError(path, f"{width}x{height} pixels exceeds the limit of {max_pixels}")
                img.load()
                if img.mode in ("P", "PA", "CMYK", "YCbCr", "RGBA"):
                    return np.asarray(img.convert("RGB"))
                if img.mode == "LA":
                    return np.asarray(img.convert("L"))
                return np.asarray(img)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(path, f"refused as a decompression bomb ({exc})") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError for broken files
        raise DataError(
            path, f"cannot decode image ({type(exc).__name__}: {exc}); is it truncated?"
        ) from None


class _LogCapture(logging.Filter):
    """Keeps a library's log lines off stderr while a file is read, for the error message.

    A filter on the library's logger (added once) sees every thread's records: those of a thread
    inside :meth:`capture` are collected instead of printed, the others pass.
    """

    def __init__(self, logger: str) -> None:
        super().__init__()
        self._local = threading.local()
        logging.getLogger(logger).addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        lines = getattr(self._local, "lines", None)
        if lines is None:
            return True
        lines.append(re.sub(r"^<[^>]*>\s*", "", record.getMessage()))  # drop "<tifffile.X @123>"
        return False

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        lines: list[str] = []
        self._local.lines = lines
        try:
            yield lines
        finally:
            self._local.lines = None


_TIFF_LOG = _LogCapture("tifffile")


def tiff_log_captured() -> AbstractContextManager[list[str]]:
    """Collect tifffile's log lines of this thread instead of printing them (for error messages)."""
    return _TIFF_LOG.capture()


def _read_tiff(path: Path, max_pixels: int) -> np.ndarray:
    import tifffile

    with _TIFF_LOG.capture() as logged:
        try:
            with tifffile.TiffFile(path) as tif:
                return _tiff_page(path, tif, max_pixels, logged)
        except DataError:
            raise
        except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error, ...
            detail = "; ".join([*logged, f"{type(exc).__name__}: {exc}"])
            raise DataError(path, f"cannot decode TIFF ({detail}); is it truncated?") from None


def _tiff_page(path: Path, tif: tifffile.TiffFile, max_pixels: int, logged: list[str]) -> np.ndarray:
    """The pixels of a single-slice TIFF (a channel-first one may keep its channels as pages)."""
    pages = tif.pages
    if not len(pages):
        detail = f" ({'; '.join(logged)})" if logged else ""
        raise DataError(path, f"cannot decode TIFF: no image page{detail}; is it truncated?")
    if len(pages) > MAX_TIFF_PAGES:
        raise DataError(path, f"TIFF has {len(pages)} pages: not a 2D slice; save each slice as its own file")
    shape = pages[0].shape
    if int(np.prod(shape[:2])) > max_pixels:
        raise DataError(path, f"{shape} pixels exceeds the limit of {max_pixels}")
    return np.asarray(tif.asarray())


def _check_shape(path: Path, array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        return array[..., :3] if array.shape[2] == 4 else array
    if array.ndim == 3 and array.shape[0] in (1, 3):  # channel-first TIFF
        return np.moveaxis(array, 0, -1)
    raise DataError(path, f"image shape {array.shape} is not a 2D slice (H×W or H×W×C with C in 1, 3)")
