"""Conversion toolchain: one module per conversion step (see converters/README.md)."""
