"""Variant check (validation only): from-scratch fine-tuning with stage one's head kept and restandardised on the
features after BatchNorm estimation, instead of a fresh head. Same call as the controls' runs."""
import json, sys, time
from pathlib import Path
import torch
import transferkit as tk
import transferkit.training.finetune as ft
from torch.optim.swa_utils import update_bn

@torch.no_grad()
def restandardise(model, records, *, batch_size=32, device="auto", accelerator=None, progress=False):
    loader = ft.eval_loader(records, model.backbone.data_cfg, batch_size=batch_size)
    update_bn(((x, y) for x, y in loader), model.backbone)
    model.eval()
    feats = torch.cat([model.backbone(x).float() for x, _ in loader])
    model.head.set_feature_stats(feats)

ft.prepare_from_scratch = restandardise
data, name, out = sys.argv[1], sys.argv[2], sys.argv[3]
weights = Path.home() / ".cache/transferkit/random-init" / f"{name}-seed0.safetensors"
r = tk.fit(data, model=name, weights=str(weights), seed=0, progress=False, report=False, strategy="finetune", unfreeze="all", out=out)
t = r.metrics["stages"]["finetune"]["training"]
print(json.dumps({"data": data, "name": name, "best_val_loss": t["best_val_loss"], "initial_val_loss": t["initial_val_loss"],
                  "best_epoch": t["best_epoch"], "val_acc": r.metrics["stages"]["finetune"]["val"]["accuracy"],
                  "hist": [(h["train_loss"], h["val_loss"]) for h in r.history if h.get("stage") == "finetune"]}))
