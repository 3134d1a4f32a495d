"""Options every tocsin command shares: which configuration file to use."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def common_options() -> argparse.ArgumentParser:
    """`-c FILE`, accepted before or after the subcommand (SUPPRESS keeps either)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="configuration file (default: $TOCSIN_CONFIG or ./tocsin.yml)",
    )
    return common


def config_path(args: argparse.Namespace) -> Path:
    """The positional FILE (check), else -c, else $TOCSIN_CONFIG, else ./tocsin.yml."""
    explicit = getattr(args, "file", None) or getattr(args, "config", None)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("TOCSIN_CONFIG", "tocsin.yml"))
