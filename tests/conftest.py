"""Unit tests draw figures off-screen (the notebooks, run by nbval, use the inline backend)."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from hebblib.runtime import single_thread  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """One thread for a test module of tiny tensors: waking the other threads costs more than they save on a
    busy machine (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    with single_thread():
        yield
