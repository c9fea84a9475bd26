"""The ``dicomnet`` command: one entry point, a subcommand per tool.

Theory of operation: the entry point parses only the subcommand name, then imports that tool's
module lazily, so starting one tool never pays for the imports of the others.

A client tool (echoscu, storescu, ...) is finished when its ``main`` returns: its association is
released and its files are closed. Run as a process (``dicomnet TOOL`` or ``python -m``), it then
flushes its output and logging and leaves with ``os._exit``, skipping the interpreter's
teardown of every module and object, which costs a short-lived tool more than its own work
(measured: ~7 ms of a 55 ms echoscu). It does so only when nothing else could still need the
teardown: no other thread alive and no multiprocessing in use. Servers and in-process calls
(``main([...])``) return normally.
"""

from __future__ import annotations

import importlib
import os
import sys

from dicomnet import __version__

# subcommand -> module in dicomnet.cli exposing ``main(argv: list[str]) -> int``
TOOLS: dict[str, str] = {
    "echoscu": "echoscu",
    "echoscp": "echoscp",
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

# tools whose work is over when main() returns (see the module docstring)
CLIENT_TOOLS = frozenset(
    {"echoscu", "storescu", "findscu", "getscu", "movescu", "mppsscu", "stgcmtscu"}
)


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
    if argv is None and tool in CLIENT_TOOLS:
        exit_without_teardown(rc)
    return rc


def exit_without_teardown(rc: int) -> None:
    """End the process at once with ``rc`` after flushing what the tool wrote, unless another
    thread or multiprocessing is still about (then return and let the interpreter end)."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return
    if "multiprocessing" in sys.modules:
        return
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more can be written
            pass
    os._exit(rc)


if __name__ == "__main__":
    sys.exit(main())
