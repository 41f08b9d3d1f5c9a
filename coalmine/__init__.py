"""Coalmine: know when jobs and apps go quiet or go wrong."""

from runtime import __version__

__all__ = ["__version__"]
