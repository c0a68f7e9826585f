"""Operations on W+ shared by every architecture: truncation and style mixing."""

from __future__ import annotations

import torch


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, *, truncation_psi: float = 0.7,
             truncation_cutoff: int | None = 8) -> torch.Tensor:
    """Truncation in W: w' = w_avg + psi (w - w_avg) on the layers below `truncation_cutoff`
    (all layers when None). ws [N, num_ws, w_dim]."""
    if ws.ndim != 3 or w_avg.shape != ws.shape[2:]:
        raise ValueError(f"ws must be [N, num_ws, w_dim] and w_avg [w_dim], got {list(ws.shape)} and {list(w_avg.shape)}")
    if truncation_psi == 1:
        return ws
    num_ws = ws.shape[1]
    cutoff = num_ws if truncation_cutoff is None else min(truncation_cutoff, num_ws)
    layer_idx = torch.arange(num_ws, device=ws.device).view(1, -1, 1)
    truncated = torch.lerp(w_avg.to(ws.dtype).view(1, 1, -1), ws, truncation_psi)
    return torch.where(layer_idx < cutoff, truncated, ws)


def mix_styles(ws_a: torch.Tensor, ws_b: torch.Tensor, crossover: torch.Tensor | int) -> torch.Tensor:
    """Style mixing by layer index: layers below `crossover` from ws_a, the rest from ws_b.
    `crossover` is an int or a per-sample tensor [N]."""
    if ws_a.shape != ws_b.shape or ws_a.ndim != 3:
        raise ValueError(f"ws_a and ws_b must be equal [N, num_ws, w_dim], got {list(ws_a.shape)} and {list(ws_b.shape)}")
    n, num_ws, _ = ws_a.shape
    layer_idx = torch.arange(num_ws, device=ws_a.device).view(1, -1, 1)
    cut = torch.as_tensor(crossover, device=ws_a.device).reshape(-1, 1, 1)
    return torch.where(layer_idx < cut, ws_a, ws_b)


class StyleGenerator(torch.nn.Module):
    """What every style-based G shares: `map` (z, c -> truncated W+) and `forward` around the
    architecture's `self.mapping` (z, c -> w [N, w_dim]) and `self.synthesis` (ws -> images)."""

    num_ws: int

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def map(self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
            truncation_cutoff: int | None = None) -> torch.Tensor:
        """z [N, z_dim] (c [N, c_dim] when conditional) -> ws [N, num_ws, w_dim]: w broadcast to
        every layer, then truncated."""
        w = self.mapping(z, c)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        return truncate(ws, self.w_avg, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random", generator=None,
                lod: float = 0.0) -> torch.Tensor:
        """z [N, z_dim] (c [N, c_dim] when conditional) -> images [N, C, r, r] in about [-1, 1]."""
        ws = self.map(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, lod=lod, noise_mode=noise_mode, generator=generator)
