"""Tests of the image layer: unpacking layers (csrc/extract*.c)."""
