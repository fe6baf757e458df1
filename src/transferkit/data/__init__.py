"""Data: image folders -> splits, robust image reading, model-specific transforms; labelled text files (:mod:`.text`).

Names are imported on first use (PEP 562), so ``transferkit.data.text`` — what the torch-free
runtime's ``predict --file`` reads texts with — does not pull in scikit-learn, timm or torch.
"""

from importlib import import_module

_WHERE = {
    "BadImageError": ".images",
    "open_image": ".images",
    "to_rgb": ".images",
    "ImageRecord": ".folder",
    "ImageSplits": ".folder",
    "SkippedFile": ".folder",
    "CONFLICTING_LABELS_ADVICE": ".folder",
    "ConflictingLabel": ".folder",
    "describe_conflicting_labels": ".folder",
    "find_conflicting_labels": ".folder",
    "find_cross_split_duplicates": ".folder",
    "load_image_folder": ".folder",
    "load_labelled_folder": ".folder",
    "make_transforms": ".transforms",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
