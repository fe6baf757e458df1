"""Reading one image file robustly (the reader is shared with the torch-free runtime).

``open_image`` and ``BadImageError`` are the data layer's names for
:func:`transferkit.image_files.read_image` and :class:`~transferkit.image_files.ImageReadError`.
"""

from ..image_files import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, list_images, to_rgb
from ..image_files import ImageReadError as BadImageError
from ..image_files import read_image as open_image

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_EXTENSIONS", "BadImageError", "list_images", "open_image", "to_rgb"]
