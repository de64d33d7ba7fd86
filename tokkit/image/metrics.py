"""Weight-free image quality metrics: PSNR and SSIM (MS-SSIM only where images are large enough).

SSIM follows Wang et al. 2004 (IEEE TIP 13(4)) with an 11-tap Gaussian window, sigma 1.5, K1 0.01,
K2 0.03, on 8-bit-rounded RGB, averaged over channels (as ``pytorch_msssim.ssim``). MS-SSIM's five
scales need >= 161 px per side; smaller images get ``None`` with the reason. Perceptual metrics
(LPIPS, FID) need downloaded network weights and are optional plug-ins (``lpips_plugin``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from tokkit.errors import FormatError

__all__ = ["psnr", "ssim", "ms_ssim_or_none", "lpips_plugin"]

log = logging.getLogger(__name__)


def _q8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> per-image PSNR in dB after 8-bit rounding ``(B,)``."""
    mse = ((_q8(x) - _q8(y)) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def _window(device: torch.device) -> torch.Tensor:
    g = torch.exp(-((torch.arange(11, device=device) - 5.0) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, 11, 11)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM ``(B,)`` of ``(B, 3, H, W)`` images in [0, 1] (valid 11x11 Gaussian windows)."""
    x, y = _q8(x).float(), _q8(y).float()
    w = _window(x.device)
    c1, c2 = 0.01**2, 0.03**2
    mx, my = F.conv2d(x, w, groups=3), F.conv2d(y, w, groups=3)
    sxx = F.conv2d(x * x, w, groups=3) - mx**2
    syy = F.conv2d(y * y, w, groups=3) - my**2
    sxy = F.conv2d(x * y, w, groups=3) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return m.flatten(1).mean(1)


def ms_ssim_or_none(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor | None, str]:
    """MS-SSIM via ``pytorch_msssim`` when installed and images are >= 161 px; else (None, reason)."""
    if min(x.shape[-2:]) < 161:
        return None, f"MS-SSIM needs >= 161 px per side (5 scales), images are {x.shape[-1]} px"
    try:
        from pytorch_msssim import ms_ssim
    except ImportError:
        return None, "MS-SSIM needs the package pytorch-msssim (pip install pytorch-msssim)"
    return ms_ssim(_q8(x), _q8(y), data_range=1.0, size_average=False), ""


def lpips_plugin(weights: str | Path | None):
    """An LPIPS scorer from a local AlexNet weights file, or None (logged) when absent: never downloads."""
    if weights is None or not Path(weights).is_file():
        log.warning("LPIPS skipped: pass a local AlexNet weights file (alexnet-owt-7be5be79.pth); tokkit never downloads")
        return None
    try:
        import lpips
    except ImportError:
        log.warning("LPIPS skipped: the package lpips is not installed")
        return None
    net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)  # tensors only: never runs code
    except Exception as e:  # noqa: BLE001 - pickle.UnpicklingError, RuntimeError: a foreign or damaged file
        raise FormatError(f"LPIPS weights {weights} are not a plain tensor file ({type(e).__name__}); "
                          "pass the torchvision AlexNet weights (alexnet-owt-7be5be79.pth)") from None
    net.net.load_state_dict({k.replace("features.", ""): v for k, v in state.items() if k.startswith("features.")},
                            strict=False)
    return lambda a, b: net(a * 2 - 1, b * 2 - 1).flatten()
