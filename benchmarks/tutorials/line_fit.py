"""Tutorial 2 by hand: a line through 100 noisy points, 100 steps, the fit and an animation."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib import animation  # noqa: E402
from torch import nn  # noqa: E402

torch.manual_seed(42)
n = 100
x = torch.ones(n, 2)
x[:, 0].uniform_(-1.0, 1)
a = torch.tensor([3.0, 2])
y = x @ a + torch.rand(n)
a = nn.Parameter(torch.tensor([-1.0, 1]))
lr = 0.1


def mse(y_hat, y):
    return ((y_hat - y) ** 2).mean()


def update():
    y_hat = x @ a
    loss = mse(y, y_hat)
    loss.backward()
    with torch.no_grad():
        a.sub_(lr * a.grad)
        a.grad.zero_()
    return loss


figure = plt.figure()
plt.scatter(x[:, 0], y, c="orange")
(line,) = plt.plot(x[:, 0], (x @ a).detach())


def animate(i):
    for _ in range(2):  # a frame every 2 steps, 50 frames: 100 steps
        loss = update()
    line.set_ydata((x @ a).detach())
    if i % 5 == 0:
        print(loss.item())
    return (line,)


anim = animation.FuncAnimation(figure, animate, frames=50, interval=20)
anim.save("line_fit.gif", writer=animation.PillowWriter(fps=10))
plt.figure()
plt.scatter(x[:, 0], y)
plt.scatter(x[:, 0], (x @ a).detach(), color="red")
plt.savefig("line_fit.png")
