"""`ocpp-gateway init`: a commented configuration file to start from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader


def render_config(path: str) -> str:
    env = Environment(loader=PackageLoader("templates", ""), keep_trailing_newline=True, autoescape=False)
    return env.get_template("site.toml.j2").render(path=path)


def register(sub: Any) -> None:
    init = sub.add_parser("init", help="write a commented configuration file (default site.toml)")
    init.add_argument("file", nargs="?", default="site.toml")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from gateway.operator.cli import CliError
    target = Path(args.file)
    if target.exists() and not args.force:
        raise CliError(f"{target} exists; use --force to replace it")
    target.write_text(render_config(str(target)), encoding="utf-8")
    print(f"wrote {target}; start with: ocpp-gateway --config {target} run")
    return 0
