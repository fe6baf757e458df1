"""Exploration (fifth session), train + val only, test never read: does the global pooling of the last feature map matter
for frozen-feature transfer? Average pooling (what the backbones ship) vs max, average and max concatenated (timm's
``catavgmax``), and generalised-mean pooling (GeM, p = 3; Radenović et al. 2018). Plant disease shows as small lesions,
which an average over the leaf may wash out.

Scored like bench/feature_views_cv.py: the refit logistic probe (C by inner 5-fold CV log loss, refitted) in nested
StratifiedGroupKFold(5) x 3 seeds with subjects kept together (bench/_common.exploration_subject).

    OMP_NUM_THREADS=1 .venv/bin/python bench/pooling_cv.py plants tf_efficientnet_lite0 mobilenet_v2
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_views_cv import report_variants, train_val_records  # noqa: E402
from _common import DATA_EPILOG  # noqa: E402


def feature_maps(backbone, records, transform) -> torch.Tensor:
    from transferkit.data import open_image

    body = backbone.body
    trunk = body.forward_features if hasattr(body, "forward_features") else body[0]
    out = []
    with torch.no_grad():
        for i in range(0, len(records), 32):
            out.append(trunk(torch.stack([transform(open_image(r.path)) for r in records[i:i + 32]])))
    return torch.cat(out)


def main(data_name: str, names: list[str]) -> None:
    import transferkit as tk
    from transferkit.data import make_transforms

    recs, y, g = train_val_records(data_name)
    for name in names:
        bb = tk.load_backbone(name).eval()
        maps = feature_maps(bb, recs, make_transforms(bb.data_cfg))
        avg, mx = maps.mean((2, 3)), maps.amax((2, 3))
        gem = maps.clamp(min=1e-6).pow(3).mean((2, 3)).pow(1 / 3)
        variants = {"avg": avg, "max": mx, "catavgmax": torch.cat([avg, mx], 1), "gem3": gem}
        report_variants(data_name, name, {label: (lambda X=X: X.numpy()) for label, X in variants.items()}, y, g)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    p.add_argument("data", metavar="DATASET", help="image data set by name under the data root (plants, pneumonia); only train + val are read")
    p.add_argument("backbones", nargs="+", metavar="BACKBONE", help="backbone names, e.g. tf_efficientnet_lite0 mobilenet_v2; the poolings (avg, max, catavgmax, gem3) are scored per backbone")
    return p


if __name__ == "__main__":
    args = build_parser().parse_args()
    main(args.data, args.backbones)
