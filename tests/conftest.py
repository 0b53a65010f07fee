import sys
from pathlib import Path

import jax
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test helpers such as closed_forms


@pytest.fixture(autouse=True)
def _isolated_precision():
    """Training and Gauss-Newton switch JAX's precision globally (`set_precision`); restore it after each test
    so that no test depends on which tests ran before it in the same worker."""
    before = bool(jax.config.jax_enable_x64)
    yield
    jax.config.update("jax_enable_x64", before)
