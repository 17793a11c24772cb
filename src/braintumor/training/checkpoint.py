"""Lightning's ``last.ckpt``: refuse one that cannot be resumed before torch unpickles it.

Weights files (``.safetensors`` + JSON) are read and written by :mod:`braintumor.models.weights`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from braintumor.models.weights import CheckpointError


def check_resumable(path: Path) -> None:
    """Refuse a Lightning ``last.ckpt`` that cannot be resumed before torch tries to unpickle it.

    A checkpoint is a zip archive (``torch.save``); reading every member checks its CRC, so an
    empty, truncated or overwritten file (a run killed while saving it, a partial copy) is found.

    Raises:
        CheckpointError: naming the file and saying to delete it (or rerun with --no-resume) to
            start over, or to restore it to resume.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            problem = f"its record {damaged!r} is corrupt" if damaged else ""
            if not problem and not any(n.endswith("data.pkl") for n in archive.namelist()):
                problem = "it holds no checkpoint record (data.pkl)"
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        size = path.stat().st_size if path.is_file() else 0
        problem = "it is empty (0 bytes)" if size == 0 else f"it is truncated or not a checkpoint ({exc})"
    if problem:
        raise CheckpointError(
            f"{path}: cannot resume from it: {problem}. Delete it (or rerun with "
            "--no-resume) to start the run over, or restore it from a copy to resume"
        )
