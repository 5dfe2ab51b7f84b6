"""`ocpp-gateway bench`: the benchmark runner as a subcommand of the gateway's CLI.

gateway/cli.py loads `bench.cli` as an optional extension (its EXTENSIONS list) and skips
it when the bench package is absent, so this module must only add a parser.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.run import __doc__ as RUN_DOC
from bench.run import add_arguments, execute


def register(subparsers: Any) -> None:
    """Add the `bench` subcommand with the same options as `python -m bench.run`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="benchmark the gateway against the floor server (docs/benchmarks.md)",
        description=(RUN_DOC or "").splitlines()[0],
    )
    add_arguments(parser)
    parser.set_defaults(func=execute)
