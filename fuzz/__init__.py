"""Coverage-guided fuzzing of dicomnet's hostile-input surfaces (atheris / libFuzzer).

Theory of operation
-------------------
Each module of :mod:`fuzz.targets` exposes ``test_one_input(data: bytes) -> None``, a plain
Python function with no dependency on atheris: it decodes the fuzzer's bytes into a small
program (configuration, byte chunks, primitive calls) and runs it against one dicomnet layer.
The only outcomes it tolerates are a normal return and the exceptions the layer documents
(:class:`dicomnet.errors.DicomNetError` subclasses, where the contract allows them); anything
else escapes and is a crash. :mod:`fuzz.run` wraps a target in atheris with dicomnet's modules
instrumented; ``tests/fuzz`` replays the seed corpus and the regression inputs without atheris.
See ``fuzz/README.md``.
"""
