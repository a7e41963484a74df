"""`python -m slos report ...`: commands over the SLO specs that need no generator (see each command's --help)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from slos import report

COMMANDS = {"report": (report.main, "an HTML page of every budgeted SLO's error budget and burn rates (Prometheus)")}
USAGE = "usage: python -m slos COMMAND [--help]\n\ncommands:\n" + "".join(
    f"  {name:<8} {summary}\n" for name, (_, summary) in COMMANDS.items()
)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in COMMANDS:
        wanted_help = arguments[:1] in (["-h"], ["--help"])
        print(USAGE, end="", file=sys.stdout if wanted_help else sys.stderr)
        return 0 if wanted_help else 2
    command, _ = COMMANDS[arguments[0]]
    return command(arguments[1:])


if __name__ == "__main__":
    sys.exit(main())
