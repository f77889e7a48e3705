"""The project's models. exportconf calls these factories and grades every export of what they return."""

from __future__ import annotations

import numpy as np


def data(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, (x[:, 0] - 0.5 * x[:, 3] > 0).astype(np.int64)


def logistic():
    from sklearn.linear_model import LogisticRegression

    x, y = data()
    return LogisticRegression(max_iter=500).fit(x, y), x[:16]


def mlp():
    import torch

    torch.manual_seed(7)
    x, y = data()
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1), torch.nn.Sigmoid())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32)).reshape(-1, 1)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy(model(xt), yt).backward()
        opt.step()
    return model.eval(), x[:16]


def segments():
    """Ten customer segments: a classifier whose forward returns logits (declared as outputs = "logits")."""
    import torch

    torch.manual_seed(7)
    x, _ = data(600)
    y = np.argmax(x @ np.random.default_rng(8).normal(size=(6, 10)), axis=1)
    model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    return model.eval(), x[:16]
