"""Image files for the runtime: the shared torch-free reader (:mod:`transferkit.image_files`)."""

from ..image_files import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageReadError, list_images, read_image, to_rgb

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_EXTENSIONS", "ImageReadError", "list_images", "read_image", "to_rgb"]
