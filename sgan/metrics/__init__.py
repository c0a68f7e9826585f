"""GAN metrics: FID, KID, PPL, linear separability, precision/recall (+ density/coverage), mode
coverage, and their detectors.

Entry points:
- `compute_metric(name, G=..., data_path=..., detector=None, num=None, batch=32, device=..., seed=0)`
  with names such as `fid50k`, `kid10k`, `pr10k`, `ppl2k_wend`, `ls10k`, `modes10k` (`parse_metric_name`);
- `fid`, `kid`, `pr`, `ppl`, `ls`, `modes` (sgan.metrics.api) with every option;
- `LPIPS` (sgan.metrics.lpips), `load_lpips`, `load_perceptual_features` (sgan.metrics.detectors)
  for perceptual losses.
"""

from sgan.metrics.api import (DEFAULT_DETECTOR, DEFAULT_NUM, METRICS, MetricSpec, compute_metric, fid, kid, ls,
                              modes, parse_metric_list, parse_metric_name, ppl, pr)
from sgan.metrics.detectors import (load_attribute_detector, load_distance, load_feature_detector, load_lpips,
                                    load_perceptual_features)
from sgan.metrics.lpips import LPIPS

__all__ = ["compute_metric", "parse_metric_name", "parse_metric_list", "MetricSpec", "METRICS", "DEFAULT_NUM",
           "DEFAULT_DETECTOR", "fid", "kid", "pr", "ppl", "ls", "modes", "LPIPS", "load_lpips", "load_perceptual_features",
           "load_feature_detector", "load_distance", "load_attribute_detector"]
