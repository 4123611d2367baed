"""SWAG's activation smoothing (Wang, Li, Vasconcelos, CVPR 2021, Sec. 3.4).

    sigma(F_ik) = exp(F_ik) / sum_{m,n} exp(F_mn)

a softmax over all C*H*W elements of one sample's activation tensor. It is applied to the
activations the losses see, never inside the network.

Modes:
- `softmax`: the paper's smoothing.
- `shift`: its first-order expansion around equal logits, N * sigma(z) ~ 1 + (z - mean(z)): the
  activations shifted and scaled, with nothing non-linear left. It is the control that tells
  whether a result owes anything to the softmax's non-linearity (docs/paper.md): at a high
  temperature the softmax is close to it.
- `channel`: a softmax over the channels at each pixel, the Softmax2d variant of the public code.
- `none`: plain Gatys et al.

Departures from the paper, and why:
- The logits are divided by a temperature (`smooth`'s argument). The engine gives it in units of
  the layer's scale by default (losses.py: the standard deviation of the content image's
  activations at that layer): random-weight residual nets reach activations of 100 (ResNet-50
  layer4) to 1e10 (Inception-v3 Mixed_7c), where a softmax at temperature 1 is one-hot.
- With `scaled` (the default), the result is multiplied by the number of elements it is
  normalised over, so its mean is 1 rather than 1/(C*H*W) (about 1e-6 at 512 px): the Gram
  matrices of such tiny values underflow fp32 and need weights like the public code's 1e17.
  The engine's normalised losses do not change with this factor; the paper-literal loss
  (`loss_scaling="paper"`) turns it off.
- exp(z - logsumexp(z)) is computed with reductions rather than `torch.softmax` over one row of
  C*H*W elements, a shape the softmax kernel handles 3-8x slower than the network itself on a
  GPU; it is as stable (the maximum is subtracted inside logsumexp) and exact for batches
  (each sample is normalised over its own elements). On the CPU it is the other way round
  (torch.softmax over the row was 1.5-3x faster there, forward and backward on a 64x256x256
  activation), so the CPU keeps `torch.softmax`.
"""

from __future__ import annotations

import torch

from ..choices import MODES


def smooth(features: torch.Tensor, mode: str, temperature: float | torch.Tensor = 1.0,
           scaled: bool = True) -> torch.Tensor:
    """Smooth (B, C, H, W) activations. `temperature` is a number or a tensor that broadcasts
    against `features` (for example one per sample)."""
    if mode == "none":
        return features
    z = features / temperature
    if mode == "channel":
        count = features.shape[1]
        p = (z - torch.logsumexp(z, dim=1, keepdim=True)).exp()
    else:
        flat = z.flatten(1)
        count = flat.shape[1]
        if mode == "shift":
            p = (1 + flat - flat.mean(1, keepdim=True)) / count
        elif mode != "softmax":
            raise ValueError(f"unknown smoothing {mode!r}: choose one of {', '.join(MODES)}")
        elif flat.device.type == "cpu":
            p = torch.softmax(flat, dim=1)
        else:
            p = (flat - torch.logsumexp(flat, dim=1, keepdim=True)).exp()
        p = p.view_as(features)
    return p * count if scaled else p


def linearisation_error(features: torch.Tensor, temperature: float | torch.Tensor) -> float:
    """How far the softmax is from its first-order expansion (`shift`) on these activations:
    ||softmax - shift|| / ||shift - 1||, the non-linear part relative to the linear one. 0 means
    the softmax does nothing that shifting and scaling the activations would not."""
    soft, linear = smooth(features, "softmax", temperature), smooth(features, "shift", temperature)
    return float((soft - linear).norm() / (linear - 1).norm().clamp_min(1e-30))
