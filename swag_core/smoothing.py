"""SWAG's activation smoothing (Wang, Li, Vasconcelos, CVPR 2021, Sec. 3.4).

    sigma(F_ik) = exp(F_ik) / sum_{m,n} exp(F_mn)

a softmax over all C*H*W elements of one sample's activation tensor. It is applied to the
activations the losses see, never inside the network.

Departures from the paper, and why:
- The logits are divided by a temperature times the layer's scale (`scale`, the standard
  deviation of the content image's activations at that layer, fixed for a job). Random-weight
  residual nets reach activations of 100 (ResNet-50 layer4) to 1e10 (Inception-v3 Mixed_7c):
  at temperature 1 the softmax is one-hot, its gradient vanishes and the image turns to noise.
  Relative to the layer's own scale one temperature works for every network and layer.
- The result is multiplied by the number of elements it is normalised over, so its mean is 1
  rather than 1/(C*H*W) (about 1e-6 at 512 px): the Gram matrices of such tiny values underflow
  fp32 and need weights like the public code's 1e17. The losses are normalised anyway (losses.py).
- `channel`: a softmax over the channels at each pixel, the Softmax2d variant of the public code.
- exp(z - logsumexp(z)) is computed with reductions rather than `torch.softmax` over one row of
  C*H*W elements, a shape the softmax kernel handles 3-8x slower than the network itself on a
  GPU; it is as stable (the maximum is subtracted inside logsumexp) and exact for batches
  (each sample is normalised over its own elements). On the CPU it is the other way round
  (torch.softmax over the row was 1.5-3x faster there, forward and backward on a 64x256x256
  activation), so the CPU keeps `torch.softmax`.
"""

from __future__ import annotations

import torch

MODES = ("softmax", "channel", "none")
LAYER_CHOICES = ("all", "deep")


def smooth(features: torch.Tensor, mode: str, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Smooth (B, C, H, W) activations. `temperature` is a number or a tensor that broadcasts
    against `features` (for example one per sample)."""
    if mode == "none":
        return features
    z = features / temperature
    if mode == "softmax":
        flat = z.flatten(1)
        if flat.device.type == "cpu":
            return (torch.softmax(flat, dim=1) * flat.shape[1]).view_as(features)
        log_p = flat - torch.logsumexp(flat, dim=1, keepdim=True)
        return (log_p.exp() * flat.shape[1]).view_as(features)
    if mode == "channel":
        return (z - torch.logsumexp(z, dim=1, keepdim=True)).exp() * features.shape[1]
    raise ValueError(f"unknown smoothing {mode!r}: choose one of {', '.join(MODES)}")
