"""``edgepose convert STEP``: the conversion toolchain's own parser (converters.cli), hooked
under the edgepose command."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    from converters.cli import add_convert_parser

    return add_convert_parser(subparsers)
