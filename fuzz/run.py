"""Run one fuzz target under atheris (libFuzzer), coverage-guided on dicomnet's modules.

Theory of operation
-------------------
``python fuzz/run.py TARGET [options] [-- libFuzzer flags]``. The target module, and through it
every dicomnet module it uses, is imported inside ``atheris.instrument_imports(include=
["dicomnet"])`` so libFuzzer sees edge coverage of dicomnet's bytecode (and of nothing else:
the harness, pydicom and the standard library stay uninstrumented and fast). Nothing imports
dicomnet before that point; the script checks it.

libFuzzer is given two corpus directories: the working corpus first (new interesting inputs
are written there) and the committed seed corpus ``fuzz/corpus/TARGET`` second (only read).
Crash, timeout and out-of-memory inputs are written under the artifact directory as
``crash-<sha1>``, ``timeout-<sha1>``, ``oom-<sha1>``. Defaults: ``fuzz/.work/TARGET/corpus``
and ``fuzz/.work/TARGET/crashes/`` (git-ignored). Guards: ``-timeout`` (seconds per input) and
``-rss_limit_mb``; any libFuzzer flag after ``--`` overrides them.

Replay an input without fuzzing: ``python fuzz/run.py TARGET --replay FILE...`` (runs the plain
target function and prints the traceback, no atheris needed).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import traceback
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
ROOT = FUZZ_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.targets import TARGETS, load  # noqa: E402  (needs ROOT on sys.path)

DEFAULT_TIMEOUT = 10
DEFAULT_RSS_LIMIT_MB = 512


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("target", choices=sorted(TARGETS))
    p.add_argument("--corpus", type=Path, help="working corpus directory (written to)")
    p.add_argument("--seeds", type=Path, help="seed corpus directory (read only)")
    p.add_argument("--artifacts", type=Path, help="where crash-*/timeout-*/oom-* files go")
    p.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds per input")
    p.add_argument("--rss-limit-mb", type=int, default=DEFAULT_RSS_LIMIT_MB)
    p.add_argument("--replay", nargs="+", type=Path, metavar="FILE", help="run inputs, no fuzzing")
    return p


def replay(target: str, files: list[Path]) -> int:
    entry = load(target)
    failures = 0
    for path in files:
        try:
            entry(path.read_bytes())
        except Exception:
            failures += 1
            print(f"== {path}: CRASH", flush=True)
            traceback.print_exc()
        else:
            print(f"== {path}: ok", flush=True)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after "--" goes to libFuzzer untouched (its flags look like -name=value).
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    if args.replay:
        return replay(args.target, args.replay)

    import atheris  # type: ignore[import-untyped]

    work = FUZZ_DIR / ".work" / args.target
    corpus = args.corpus or work / "corpus"
    artifacts = args.artifacts or work / "crashes"
    seeds = args.seeds or FUZZ_DIR / "corpus" / args.target
    artifacts.mkdir(parents=True, exist_ok=True)

    already = sorted(m for m in sys.modules if m == "dicomnet" or m.startswith("dicomnet."))
    if already:
        raise SystemExit(f"dicomnet modules imported before instrumentation: {already}")
    with atheris.instrument_imports(include=["dicomnet"]):
        entry = load(args.target)
    instrumented = [m for m in sys.modules if m.startswith("dicomnet.")]
    print(f"run.py: instrumented {len(instrumented)} dicomnet modules", flush=True)

    max_len = TARGETS[args.target][2]
    # libFuzzer re-runs argv[0] through the shell for -minimize_crash, -fork and -jobs: make it
    # a command that re-enters this script with the same target (its flags follow the "--").
    self_command = " ".join(
        shlex.quote(part) for part in (sys.executable, str(Path(__file__).resolve()), args.target)
    )
    fuzzer_argv = [
        f"{self_command} --",
        f"-artifact_prefix={artifacts}{os.sep}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-max_len={max_len}",
        *extra,
    ]
    if not any(not arg.startswith("-") for arg in extra):
        # No input files of its own (e.g. -minimize_crash=1 FILE): fuzz the corpus dirs.
        corpus.mkdir(parents=True, exist_ok=True)
        fuzzer_argv.append(str(corpus))
        if seeds.is_dir() and seeds.resolve() != corpus.resolve():
            fuzzer_argv.append(str(seeds))
    atheris.Setup(fuzzer_argv, entry)
    atheris.Fuzz()
    return 0  # pragma: no cover - atheris.Fuzz() exits the process


if __name__ == "__main__":
    sys.exit(main())
