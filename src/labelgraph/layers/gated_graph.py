"""Gated graph neural network propagation (Li et al., ICLR 2016, https://arxiv.org/abs/1511.05493)."""

from __future__ import annotations

import torch
import torch.nn as nn


class GatedGraphCell(nn.Module):
    r"""One GGNN propagation step with incoming and outgoing edges.

    For node states :math:`h` (N x d) and adjacency :math:`A_{in}, A_{out}`:

    .. math::
        a &= [A_{in} (h W_{in} + b_{in}) \,;\, A_{out} (h W_{out} + b_{out})] \\
        z &= \sigma(a W_z + h U_z), \quad r = \sigma(a W_r + h U_r) \\
        \tilde h &= \tanh(a W + (r \odot h) U), \quad h' = (1 - z) \odot h + z \odot \tilde h

    Messages are recomputed from the current states at every step, and the reset gate has its own ``U_r`` (the
    graphMLC re-implementation computes messages once; SSGRL's reset gate reuses ``U_z``: both are bugs).
    Without ``edge_transform`` the messages are the raw neighbour states, :math:`a = [A_{in} h \,;\, A_{out} h]`
    (SSGRL's propagation, where the node states are 2048-d image features).

    Args:
        hidden: node state size d.
        bias: bias of the gate layers (SSGRL: yes; graphMLC's GGNN: no).
        edge_transform: per-direction linear maps of the states before aggregation (GGNN: yes; SSGRL: no).

    Shapes:
        h (B, N, d), adj_in (N, N), adj_out (N, N) -> (B, N, d).
    """

    def __init__(self, hidden: int, bias: bool = True, edge_transform: bool = True) -> None:
        super().__init__()
        self.message_in = nn.Linear(hidden, hidden) if edge_transform else nn.Identity()
        self.message_out = nn.Linear(hidden, hidden) if edge_transform else nn.Identity()
        self.w_z, self.w_r, self.w_h = (nn.Linear(2 * hidden, hidden, bias=bias) for _ in range(3))
        self.u_z, self.u_r, self.u_h = (nn.Linear(hidden, hidden, bias=False) for _ in range(3))

    def forward(self, h: torch.Tensor, adj_in: torch.Tensor, adj_out: torch.Tensor) -> torch.Tensor:
        a = torch.cat([adj_in @ self.message_in(h), adj_out @ self.message_out(h)], dim=-1)  # (B, N, 2d)
        z = torch.sigmoid(self.w_z(a) + self.u_z(h))
        r = torch.sigmoid(self.w_r(a) + self.u_r(h))
        h_tilde = torch.tanh(self.w_h(a) + self.u_h(r * h))
        return (1 - z) * h + z * h_tilde
