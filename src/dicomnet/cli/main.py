"""The ``dicomnet`` command: one entry point, a subcommand per tool.

Theory of operation: the entry point parses only the subcommand name, then imports that tool's
module lazily, so starting one tool never pays for the imports of the others.
"""

from __future__ import annotations

import importlib
import os
import sys

from dicomnet import __version__

# subcommand -> module in dicomnet.cli exposing ``main(argv: list[str]) -> int``
TOOLS: dict[str, str] = {
    "echoscu": "echoscu",
    "storescu": "storescu",
    "storescp": "storescp",
    "findscu": "findscu",
    "getscu": "getscu",
    "movescu": "movescu",
    "qrscp": "qrscp",
    "mppsscu": "mppsscu",
    "stgcmtscu": "stgcmtscu",
    "archive": "archive",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        names = ", ".join(sorted(TOOLS)) or "(none yet)"
        print(f"usage: dicomnet [--version] TOOL [ARGS...]\n\ntools: {names}")
        return 0 if args else 2
    if args[0] in ("--version", "-V"):
        print(f"dicomnet {__version__}")
        return 0
    tool = args[0]
    if tool not in TOOLS:
        print(f"dicomnet: unknown tool {tool!r}; try 'dicomnet --help'", file=sys.stderr)
        return 2
    # The tools never do linear algebra, but pydicom imports numpy, whose OpenBLAS would start
    # a thread per core that spins after start-up (measured: 6% of an echo loop's CPU). A
    # setting the user made wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    module = importlib.import_module(f"dicomnet.cli.{TOOLS[tool]}")
    rc: int = module.main(args[1:])
    return rc


if __name__ == "__main__":
    sys.exit(main())
