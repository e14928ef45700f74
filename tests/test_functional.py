"""The pure functions against independent references."""

import pytest
import torch
from torchmetrics import MeanAbsoluteError, MeanSquaredError, R2Score

from gd_lightning import (
    LinearRegression,
    QuadraticRegression,
    Standardization,
    linear_in_original_units,
    quadratic_in_original_units,
    regression_metrics,
    regression_sums,
)


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_epoch_metrics_from_sums_equal_torchmetrics_over_the_batches(offset: float) -> None:
    generator = torch.Generator().manual_seed(0)
    batches = []
    for rows in (7, 7, 3):  # an uneven last batch
        y = torch.randn(rows, 3, generator=generator, dtype=torch.float64) * 5 + offset
        batches.append((y + torch.randn(rows, 3, generator=generator, dtype=torch.float64), y))
    reference = {
        "mse": MeanSquaredError(), "rmse": MeanSquaredError(squared=False),
        "mae": MeanAbsoluteError(), "r2": R2Score(multioutput="uniform_average"),
    }  # fmt: skip
    for metric in reference.values():
        metric.set_dtype(torch.float64)  # both in float64: they agree to rounding
    shift = batches[0][1].mean(0)  # any constant serves; this one keeps R²'s precision
    sums = torch.zeros(4, 3, dtype=torch.float64)
    for preds, y in batches:
        sums += regression_sums(preds, y, shift)
        for metric in reference.values():
            metric.update(preds, y)
    ours = regression_metrics(sums, rows=17)
    for name, metric in reference.items():
        assert float(ours[name]) == pytest.approx(float(metric.compute()), rel=1e-9), name


def random_standardization(in_features: int, out_features: int) -> Standardization:
    generator = torch.Generator().manual_seed(1)
    return Standardization(
        feature_shift=torch.randn(in_features, generator=generator) * 10,
        feature_scale=torch.rand(in_features, generator=generator) + 0.5,
        target_shift=torch.randn(out_features, generator=generator) * 10,
        target_scale=torch.rand(out_features, generator=generator) + 0.5,
        feature_constant=torch.zeros(in_features),
    )


def test_folding_a_standardization_into_a_linear_model_predicts_the_same() -> None:
    model = LinearRegression(4, 2, lr=0.1)
    model.set_standardization(random_standardization(4, 2))
    x = torch.randn(9, 4) * 10
    weight, bias = linear_in_original_units(
        model.linear.weight.detach(), model.linear.bias.detach(),
        *(model.scaling.get_buffer(name) for name in Standardization.names()),
    )  # fmt: skip
    with torch.no_grad():
        expected = model(x).double()  # scaling applied step by step by the model
    torch.testing.assert_close(x.double() @ weight.T + bias, expected, rtol=1e-5, atol=1e-4)


def test_folding_a_standardization_into_the_quadratic_predicts_the_same() -> None:
    model = QuadraticRegression(lr=0.1, init_params=[0.5, -1.0, 2.0])
    model.set_standardization(random_standardization(1, 1))
    t = torch.linspace(-20, 20, 11)[:, None]
    stats = [float(model.scaling.get_buffer(name)[0]) for name in Standardization.names()[:4]]
    a, b, c = quadratic_in_original_units(model.quadratic.params.detach(), *stats)
    with torch.no_grad():
        expected = model(t).double()
    torch.testing.assert_close(a * t.double() ** 2 + b * t + c, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("bias", [True, False])
def test_the_design_matrix_times_theta_is_the_models_prediction(bias: bool) -> None:
    model = LinearRegression(3, 2, bias=bias, lr=0.1)
    z = torch.randn(5, 3)
    with torch.no_grad():
        torch.testing.assert_close(model.design_matrix(z) @ model.theta(), model(z))
    quad = QuadraticRegression(lr=0.1)
    t = torch.randn(6, 1)
    with torch.no_grad():
        torch.testing.assert_close(quad.design_matrix(t) @ quad.theta(), quad(t))
