"""The optimisers that move the image's pixels: Adam with an average of its iterates, or L-BFGS
that keeps the best image it saw (pipeline.py says why each)."""

from __future__ import annotations

import math

import torch

from ..errors import Cancelled, SwagError
from .extractors import network_input


def optimise(x: torch.Tensor, loss_fn, optimizer: str, iterations: int, cancel, on_iteration) -> torch.Tensor:
    """`iterations` optimiser steps from `x` (1, 3, H, W); returns the result (detached)."""
    def evaluate(image: torch.Tensor) -> torch.Tensor:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        loss, _ = loss_fn(network_input(image))
        if not torch.isfinite(loss):
            raise SwagError("the optimisation diverged (the loss is not finite); raise the "
                            "temperature or lower the style weight")
        return loss

    if optimizer == "adam":
        result = _adam(x, evaluate, iterations, on_iteration)
    else:
        result = _lbfgs(x.contiguous().requires_grad_(True), evaluate, loss_fn, iterations, on_iteration)
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
    return result


# Adam works on the pixels' logits (`_adam`); 0.08 there is a step of 0.02 in pixel values at
# mid-grey (the sigmoid's slope is 1/4), crowsonkb/style-transfer-pytorch's step.
ADAM_LR = 0.08
# The average of the iterates spans about this share of a scale's iterations (`average_decay`).
AVERAGE_SPAN = 0.2
# The logits' bound: pixels of exactly 0 or 1 start at sigmoid(+-6.9), within 1/1000 of them.
_EDGE = 1e-3


def average_decay(iterations: int) -> float:
    """The decay of the exponential average of Adam's iterates, for a scale of `iterations` steps.
    crowsonkb/style-transfer-pytorch uses 0.99 over 500-1000 steps; over the few dozen steps a
    scale gets on a CPU, 0.99 would average the upsampled, blurred starting image into the
    result. A span of a fifth of the scale's steps keeps the average's job (removing Adam's
    pixel-level jitter) without that, between 0.8 and 0.99."""
    return min(0.99, max(0.8, 1 - 1 / (AVERAGE_SPAN * iterations)))


def _adam(x, evaluate, iterations, on_iteration) -> torch.Tensor:
    """Adam on a bounded parameterisation, image = sigmoid(logits), rather than clamping the
    pixels after each step (crowsonkb/style-transfer-pytorch clamps): a clamp stops a pixel
    dead at 0 or 1 while its neighbours move on, and the darks and lights then pile up there;
    the sigmoid slows a pixel as it nears either end. On the quality benchmark it kept more of
    the photo's structure at the same texture (docs/quality.md)."""
    logits = torch.logit(x.clamp(_EDGE, 1 - _EDGE)).contiguous().requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=ADAM_LR, betas=(0.9, 0.99))
    decay = average_decay(iterations)
    average = torch.zeros_like(x, requires_grad=False)
    for i in range(1, iterations + 1):
        opt.zero_grad(set_to_none=True)
        loss = evaluate(torch.sigmoid(logits))
        loss.backward()
        opt.step()
        with torch.no_grad():
            average.mul_(decay).add_(torch.sigmoid(logits), alpha=1 - decay)
        on_iteration(i, float(loss.detach()))
    # Bias correction: the average started at 0.
    return (average / (1 - decay ** iterations)).clamp(0, 1)


def _lbfgs(x, evaluate, loss_fn, iterations, on_iteration) -> torch.Tensor:
    """Returns the image with the lowest loss seen, the last step's included."""
    # One evaluation per step(), so that `iterations` counts evaluations exactly and the cancel
    # check and progress run after each of them; the history persists across steps.
    new = lambda: torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=50)  # noqa: E731
    opt = new()
    last, best = [None], [math.inf, x.detach().clone()]

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = evaluate(x)
        loss.backward()
        last[0] = float(loss.detach())
        if last[0] < best[0]:
            best[:] = last[0], x.detach().clone()
        return loss

    for i in range(1, iterations + 1):
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
        on_iteration(i, last[0])
        if last[0] > RESTART_ABOVE * best[0]:
            # Clamping the pixels to [0, 1] after each step moves the image off the step that
            # L-BFGS's curvature history assumes, and on some networks (random VGG-19 after ~100
            # evaluations) that history then drives the loss up into noise. Start again from the
            # best image with an empty history.
            with torch.no_grad():
                x.copy_(best[1])
            opt = new()
    # The last step's image has not been evaluated: one forward pass decides between it and the
    # best one seen (after one or two steps, the best seen may still be the starting image).
    with torch.no_grad():
        final = float(loss_fn(network_input(x))[0])
    return x.detach() if final <= best[0] else best[1]


# A loss this far above the best one seen restarts L-BFGS from the best image (`_lbfgs`).
RESTART_ABOVE = 1.2
