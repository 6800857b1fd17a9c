"""The ``atoll-psi`` app image: a two-party ECDH private set intersection (see :mod:`.main`).

This directory is the image: ``bin/atoll-psi`` (the entry) and ``appimage.yaml`` (the AppImage).
"""
