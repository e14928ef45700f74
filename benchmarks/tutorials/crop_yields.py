"""Tutorial 3 by hand: crop yields of 15 regions, batches of 3, 50 epochs, loss per epoch."""

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

# fmt: off
inputs = np.array([[73, 67, 43], [91, 88, 64], [87, 134, 58], [102, 43, 37], [69, 96, 70],
                   [74, 66, 43], [91, 87, 65], [88, 134, 59], [101, 44, 37], [68, 96, 71],
                   [73, 66, 44], [92, 87, 64], [87, 135, 57], [103, 43, 36], [68, 97, 70]],
                  dtype="float32")
targets = np.array([[56, 70], [81, 101], [119, 133], [22, 37], [103, 119], [57, 69], [80, 102],
                    [118, 132], [21, 38], [104, 118], [57, 69], [82, 100], [118, 134],
                    [20, 38], [102, 120]], dtype="float32")
# fmt: on
torch.manual_seed(42)
inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)
train_dl = DataLoader(TensorDataset(inputs, targets), batch_size=3, shuffle=True)
w = torch.randn(2, 3, requires_grad=True)
b = torch.randn(2, requires_grad=True)


def model(x):
    return x @ w.t() + b


def mse(t1, t2):
    diff = t1 - t2
    return torch.sum(diff * diff) / diff.numel()


print(model(inputs), targets)
for epoch in range(50):
    for xb, yb in train_dl:
        loss = mse(model(xb), yb)
        loss.backward()
        with torch.no_grad():
            w -= w.grad * 1e-6
            b -= b.grad * 1e-6
            w.grad.zero_()
            b.grad.zero_()
    print(f"Epoch {epoch + 1}, loss {loss.item():.4f}")
print(model(inputs), targets)
