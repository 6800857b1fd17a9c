"""Built-in app images (contract C4): each ``atoll/apps/<name>/`` is an image directory for RunP
(``bin/`` entry + ``appimage.yaml``), loaded with ``atoll image load``."""
