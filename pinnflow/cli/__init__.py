"""The `pinnflow` command. Subcommands come from a registry: the PINN sampler's own (`pinnflow.cli.commands`)
and those other packages register under the entry-point group `pinnflow.commands` (a callable
`main(argv, prog)` that parses its own options; e.g. `reproduce` from `experiments`), so the library never
imports them."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from pinnflow.cli.commands import add_commands

__all__ = ["main", "build_parser", "plugin_commands", "PLUGIN_GROUP"]

PLUGIN_GROUP = "pinnflow.commands"


def plugin_commands() -> dict:
    """Installed subcommands of other packages: name -> entry point (load() gives `main(argv, prog)`)."""
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def build_parser(plugins: dict | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pinnflow", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    add_commands(sub)
    for name, ep in sorted((plugin_commands() if plugins is None else plugins).items()):
        sub.add_parser(name, add_help=False, help=f"{name} (from {ep.value}; `pinnflow {name} --help`)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    plugins = plugin_commands()
    command = argv[0] if argv else ""
    try:
        if command in plugins:  # its options (and --help) belong to the plugin's own parser
            plugins[command].load()(argv[1:], prog=f"pinnflow {command}")
            return 0
        args = build_parser(plugins).parse_args(argv)
        return args.fn(args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"pinnflow {command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
