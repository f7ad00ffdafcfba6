"""The `splitbrain` command."""

from __future__ import annotations

import argparse
import sys

from checker.cli import EXIT_BAD_INPUT, add_check_command


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 3, like bad input, so that 1 and 2 keep their verdict meanings."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="splitbrain", description="Jepsen-style consistency testing.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_check_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
