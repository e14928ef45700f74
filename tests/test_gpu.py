"""On a GPU the data moves there once and batches are gathered there (skipped without one)."""

import pytest
import torch
from conftest import fit

from gd_lightning import CropYieldsDataModule, FullBatch, LinearRegression

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("batch_size", [None, 4])
def test_batches_are_born_on_the_gpu_and_the_fit_matches_the_cpu(batch_size) -> None:
    results = {}
    for accelerator in ("cpu", "gpu"):
        torch.manual_seed(0)
        model = LinearRegression(3, 2, lr=1e-5, optimization="manual")
        data = CropYieldsDataModule(batch_size=batch_size, seed=1)
        trainer = fit(model, data, max_epochs=5, accelerator=accelerator, devices=1)
        results[accelerator] = model.cpu().state_dict()
        loader = trainer.train_dataloader
    if batch_size is None:
        assert isinstance(loader, FullBatch)
        assert all(t.device.type == "cuda" for t in loader.batch)
    else:
        assert loader.sampler.device.type == "cuda"
        assert loader.dataset.tensors[0].device.type == "cuda"
        x, y = next(iter(loader))
        assert x.device.type == "cuda" and y.device.type == "cuda"
    for name, value in results["cpu"].items():
        torch.testing.assert_close(results["gpu"][name], value, rtol=1e-4, atol=1e-5)


def test_the_split_is_moved_once() -> None:
    model = LinearRegression(3, 2, lr=1e-5, optimization="manual")
    data = CropYieldsDataModule(batch_size=4)
    trainer = fit(model, data, max_epochs=3, accelerator="gpu", devices=1)
    first = trainer.train_dataloader.dataset.tensors[0]
    again = data.train_dataloader().dataset.tensors[0]
    assert first.data_ptr() == again.data_ptr()
