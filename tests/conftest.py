"""Fixtures every test module shares."""
import pytest
import torch

import optiviz as ov


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny tensors and nets gain nothing from a second thread, and on a shared 2-core box an OpenMP
    thread waiting at every barrier for a busy core made small steps up to 20x slower. No result
    depends on the thread count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def cifar():
    """The bundled CIFAR-10 subset, loaded once; modules take small slices of it (views, no copies)."""
    return ov.load_cifar10()
