"""Short coverage-guided fuzzing runs of every target (the CI part of issue 7's fuzzing).

Each target runs as its own ``fuzz/run.py`` subprocess for ``DICOMNET_FUZZ_SECONDS`` seconds
(default 40), all targets at once, from a temporary copy of its seed corpus, with crash
artifacts written to a temporary directory. A test passes only if its fuzzer exited cleanly,
left no crash/timeout/oom artifact, loaded every seed, and was really coverage-guided: the
coverage libFuzzer reports after replaying the seeds must exceed what the target's code alone
could give (the dicomnet modules are instrumented).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz.targets import TARGETS

pytest.importorskip("atheris")

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "fuzz" / "run.py"
SEEDS = ROOT / "fuzz" / "corpus"
SECONDS = int(os.environ.get("DICOMNET_FUZZ_SECONDS", "40"))

# Edge coverage right after the seed corpus replay ("INITED cov"), about 70% of what it is
# today (pdu 228, ul_acceptor 445, ul_requestor 303, dimse 267, part10 86); an uninstrumented
# run reports no "cov" at all. Lower these only if dicomnet's code really shrank.
MIN_COVERAGE = {"pdu": 160, "ul_acceptor": 300, "ul_requestor": 210, "dimse": 190, "part10": 60}


class Run:
    def __init__(self, target: str, base: Path) -> None:
        self.target = target
        self.dir = base / target
        self.corpus = self.dir / "corpus"
        self.artifacts = self.dir / "artifacts"
        shutil.copytree(SEEDS / target, self.corpus)
        self.artifacts.mkdir()
        self.seed_count = len(list(self.corpus.iterdir()))
        self.log_path = self.dir / "fuzz.log"
        env = dict(os.environ)
        env.pop("DICOMNET_FUZZ_STRICT", None)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    # Started through a small launcher process: a process this one starts
                    # records our peak RSS as its own at exec (vfork shares our memory map
                    # until then), and libFuzzer compares that peak with -rss_limit_mb. The
                    # launcher's own child starts from the launcher's small one.
                    sys.executable,
                    "-c",
                    "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))",
                    sys.executable,
                    str(RUN),
                    target,
                    "--corpus",
                    str(self.corpus),
                    "--seeds",
                    str(self.corpus),
                    "--artifacts",
                    str(self.artifacts),
                    "--",
                    f"-max_total_time={SECONDS}",
                    "-print_final_stats=1",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def finish(self) -> tuple[int, str]:
        try:
            rc = self.proc.wait(timeout=SECONDS + 180)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return rc, self.log_path.read_text("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Run]]:
    # Start every selected target at once (they run in parallel), the first time one is needed.
    selected = {
        str(item.callspec.params["target"])
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.module is request.module
        and hasattr(item, "callspec")
    }
    base = tmp_path_factory.mktemp("fuzz")
    started = {target: Run(target, base) for target in sorted(selected)}
    yield started
    for run in started.values():
        run.stop()


@pytest.mark.timeout(SECONDS * 2 * len(TARGETS) + 300)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_short_fuzz_run(target: str, runs: dict[str, Run]) -> None:
    run = runs[target]
    rc, log = run.finish()
    artifacts = sorted(p.name for p in run.artifacts.iterdir())
    tail = "\n".join(line for line in log.splitlines() if not line.startswith('"'))[-4000:]
    assert rc == 0 and not artifacts, (
        f"{target}: fuzzer exit {rc}, artifacts {artifacts} in {run.artifacts}\n"
        f"replay: .venv/bin/python fuzz/run.py {target} --replay {run.artifacts}/<file>\n{tail}"
    )
    assert "run.py: instrumented" in log and "INFO: Instrumenting dicomnet." in log, tail
    found = re.search(rf"INFO:\s+(\d+) files found in {re.escape(str(run.corpus))}", log)
    assert found and int(found.group(1)) >= run.seed_count, tail
    inited = re.search(r"INITED cov: (\d+)", log)
    assert inited, tail
    assert int(inited.group(1)) >= MIN_COVERAGE[target], tail
    done = re.search(r"Done (\d+) runs in (\d+) second", log)
    assert done and int(done.group(1)) > run.seed_count, tail
