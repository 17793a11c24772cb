"""Shared settings for the model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """Run the tiny forward/backward passes on one intra-op thread.

    At 32–64 px the work per op is too small to split; on a shared 2-core runner two threads
    spend most of their time waiting for each other (runs of 5 s became 60 s).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
