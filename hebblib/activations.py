"""Activation functions used between Hebbian layers."""
from __future__ import annotations

import torch
from torch import nn


class Triangle(nn.Module):
    """Triangle activation (Coates et al. 2011; Miconi 2021; SoftHebb):

        Triangle_p(u)[n, o, h, w] = ReLU( u[n, o, h, w] − mean_o' u[n, o', h, w] ) ** p

    The channel mean is detached, as in SoftHebb, so backprop (when used) sees it as a constant.
    """

    def __init__(self, power: float = 1.0):
        super().__init__()
        if not (isinstance(power, (int, float)) and power > 0):
            raise ValueError(f"Triangle power must be > 0, got {power!r}")
        self.power = float(power)

    def base(self, u: torch.Tensor) -> torch.Tensor:
        """``ReLU(u − mean_o' u)``: the Triangle before its power."""
        return torch.relu(u - u.detach().mean(dim=1, keepdim=True))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        out = self.base(u)
        return out if self.power == 1.0 else out.pow(self.power)

    def extra_repr(self) -> str:
        return f"power={self.power}"
