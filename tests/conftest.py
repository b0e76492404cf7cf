"""Shared pytest setup: every test starts from the same random state.

Seeding before each test (rather than once per session) keeps a test's numbers the
same whether it runs alone, in a different order, or alongside the notebooks.
"""

import random

import numpy as np
import pytest
import torch

SEED = 0


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed Python, NumPy and torch before each test."""
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a test module (use with pytest.mark.usefixtures)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
