"""Coalmine: know when jobs and apps go quiet or go wrong."""

__version__ = "0.1.0"
