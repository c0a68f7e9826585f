"""VGG16 in torchvision's layout (`features.{i}`, `classifier.{0,3,6}`), for LPIPS and precision/recall.

The standard weight file is torchvision's `vgg16-397923af.pth` (ImageNet). LPIPS reads the five
ReLU outputs relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 (after `features[3]`, `[8]`, `[15]`,
`[22]`, `[29]`); precision/recall reads the 4096-d `fc2` activation after its ReLU (the layer
Kynkaenniemi et al. and NVIDIA's `vgg16.pt` use), computed at 224x224 with ImageNet normalisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sgan.metrics.inception import resize_tf1_bilinear

# (out channels or "M" for a 2x2 max pool), torchvision's configuration "D".
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
LPIPS_TAPS = (3, 8, 15, 22, 29)   # indices of relu1_2 .. relu5_3 in `features`
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16(nn.Module):
    """`features` (13 convs) and, unless `with_classifier=False`, the classifier (fc1, fc2, fc8)."""

    fc2_dim = 4096

    def __init__(self, *, with_classifier: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers)
        self.with_classifier = with_classifier
        if with_classifier:
            self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
                                            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 1000))

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five LPIPS activations of x (already normalised for the network)."""
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in LPIPS_TAPS:
                out.append(x)
                if i == LPIPS_TAPS[-1]:
                    break
        return out

    def fc2(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, 3, 224, 224] ImageNet-normalised -> relu(fc2) [N, 4096]."""
        if not self.with_classifier:
            raise RuntimeError("this VGG16 was built without its classifier")
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (7, 7)).flatten(1)
        c = self.classifier
        return F.relu(c[3](F.relu(c[0](x))))


def preprocess_pr(images: torch.Tensor) -> torch.Tensor:
    """Values 0..255 [N, C, H, W] -> 224x224, ImageNet mean/std (TF1 bilinear resize, as torch-fidelity)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 1 or 3, H, W], got {list(images.shape)}")
    x = images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = resize_tf1_bilinear(x, (224, 224)) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
