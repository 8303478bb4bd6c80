"""Losses against hand computations."""

import math

import torch

from stylegan_core.training.losses import discriminator_loss, generator_loss, r1_penalty


def test_logistic_losses_by_hand():
    real, fake = torch.tensor([[1.0], [-2.0]]), torch.tensor([[0.5], [3.0]])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    assert math.isclose(generator_loss(fake).item(), (sp(-0.5) + sp(-3.0)) / 2, rel_tol=1e-6)
    expected_d = (sp(0.5) + sp(3.0)) / 2 + (sp(-1.0) + sp(2.0)) / 2
    assert math.isclose(discriminator_loss(real, fake).item(), expected_d, rel_tol=1e-6)


def test_r1_penalty_hand_computed():
    # D(x) = sum(a * x^2) per sample, so grad = 2 a x and ||grad||^2 = 4 sum(a^2 x^2).
    a = torch.tensor([0.5, -1.0, 2.0])
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], requires_grad=True)
    logits = (a * x.square()).sum(dim=1, keepdim=True)
    gamma = 10.0
    norms = [4 * (0.25 * 1 + 1 * 4 + 4 * 9), 4 * (0 + 1 * 1 + 4 * 0.25)]
    expected = gamma / 2 * sum(norms) / 2
    r1 = r1_penalty(x, logits, gamma)
    assert math.isclose(r1.item(), expected, rel_tol=1e-6)
    r1.backward()  # create_graph=True lets the penalty itself be differentiated
    assert x.grad is not None
