"""The archive's Prometheus metrics (``qrscp --metrics ADDR:PORT``).

Theory of operation
-------------------
:class:`Metrics` is a :class:`~dicomnet.monitor.Monitor` backed by the ``prometheus-client``
package (the ``dicomnet[metrics]`` extra). It keeps its own registry and serves it over HTTP
with ``prometheus_client.start_http_server`` (a daemon thread) at the address given:

* ``dicomnet_associations_active`` (gauge) and ``dicomnet_associations_total{outcome}``
  (counted when each ends: rejected, released, aborted, stalled, closed);
* ``dicomnet_operations_total{operation,result}`` and ``dicomnet_operation_seconds{operation}``
  (histogram, from the request's arrival to its final response);
* ``dicomnet_received_bytes_total`` (C-STORE data sets) and ``dicomnet_sent_instances_total``
  (C-GET / C-MOVE sub-operations completed);
* ``dicomnet_requests_waiting`` (received, not yet being served, all associations);
* ``dicomnet_stalled_associations_total`` (aborted because the peer stopped reading).

Counters are updated from the event loop and the handler threads; prometheus-client's metrics
are thread-safe.

With ``qrscp --workers N`` each worker counts in prometheus-client's multiprocess mode (its
values in files under the directory named by ``PROMETHEUS_MULTIPROC_DIR``, set by the parent
before any worker imports the package) and the parent serves the sum of all workers
(:class:`WorkerMetrics`); the gauges are summed over live workers.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from dicomnet.dimse.status import Status
from dicomnet.monitor import AssociationRecord, Monitor, OperationRecord

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

__all__ = ["Metrics", "WorkerMetrics"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


_WARNINGS = (Status.OPTIONAL_ATTRIBUTES_NOT_SUPPORTED, Status.ATTRIBUTE_LIST_ERROR,
             Status.ATTRIBUTE_VALUE_OUT_OF_RANGE)  # fmt: skip


def _result(status: int | None) -> str:
    if status is None:
        return "none"
    if status == Status.SUCCESS:
        return "success"
    if status == Status.CANCEL:
        return "cancel"
    if status in _WARNINGS or 0xB000 <= status <= 0xBFFF:  # PS3.7 C.4, PS3.4 Bxxx
        return "warning"
    return "failure"


class Metrics(Monitor):
    """Prometheus metrics of one server process (see the module docstring)."""

    def __init__(self) -> None:
        try:
            # lazy: an optional extra (dicomnet[metrics]), only imported with --metrics
            import prometheus_client as prom
        except ImportError as exc:  # pragma: no cover - the extra is installed by scripts/*
            raise RuntimeError(
                "--metrics needs the prometheus-client package: pip install 'dicomnet[metrics]'"
            ) from exc
        self._prom = prom
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.active = prom.Gauge("dicomnet_associations_active", "Established associations",
                                 registry=r, multiprocess_mode="livesum")  # fmt: skip
        self.associations = prom.Counter("dicomnet_associations", "Associations by outcome",
                                         ["outcome"], registry=r)  # fmt: skip
        self.operations = prom.Counter("dicomnet_operations", "Served requests",
                                       ["operation", "result"], registry=r)  # fmt: skip
        self.seconds = prom.Histogram(
            "dicomnet_operation_seconds", "Request arrival to final response", ["operation"],
            buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 2.0, 10.0, 60.0), registry=r,
        )  # fmt: skip
        self.received = prom.Counter("dicomnet_received_bytes", "C-STORE data set bytes",
                                     registry=r)  # fmt: skip
        self.sent = prom.Counter("dicomnet_sent_instances", "Instances sent by C-GET/C-MOVE",
                                 registry=r)  # fmt: skip
        self.waiting = prom.Gauge("dicomnet_requests_waiting",
                                  "Requests received, not yet being served", registry=r,
                                  multiprocess_mode="livesum")  # fmt: skip
        self.stalls = prom.Counter("dicomnet_stalled_associations",
                                   "Associations aborted: the peer stopped reading", registry=r)  # fmt: skip
        self._server: WSGIServer | None = None

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host:port`` (port 0: any free port); the bound address."""
        server, _thread = self._prom.start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        bound = server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        _stop(self._server)
        self._server = None

    # -- Monitor -----------------------------------------------------------------------------

    def association_started(self, record: AssociationRecord) -> None:
        if record.outcome == "accepted":
            self.active.inc()

    def association_ended(self, record: AssociationRecord) -> None:
        # counted once, by how it ended: rejected, released, aborted, stalled or closed
        if record.outcome != "rejected":
            self.active.dec()
        self.associations.labels(record.outcome).inc()

    def operation_finished(self, record: OperationRecord) -> None:
        self.operations.labels(record.operation, _result(record.status)).inc()
        self.seconds.labels(record.operation).observe(record.duration)
        if record.operation == "C-STORE" and record.status == Status.SUCCESS:
            self.received.inc(record.bytes)
        if record.completed:
            self.sent.inc(record.completed)

    def pending_changed(self, waiting: int) -> None:
        self.waiting.set(waiting)

    def stalled(self, record: AssociationRecord) -> None:
        self.stalls.inc()


def _stop(server: WSGIServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


class WorkerMetrics:
    """The parent's endpoint for ``--workers``: the sum of the workers' metrics (see the
    module docstring). Create it *before* forking (it sets ``PROMETHEUS_MULTIPROC_DIR``)."""

    def __init__(self, directory: str) -> None:
        shutil.rmtree(directory, ignore_errors=True)  # values of an earlier run
        os.makedirs(directory, exist_ok=True)
        os.environ[MULTIPROC_ENV] = directory
        self.directory = directory
        self._server: WSGIServer | None = None

    def serve(self, host: str, port: int) -> tuple[str, int]:
        try:
            # lazy: an optional extra, imported after PROMETHEUS_MULTIPROC_DIR is set
            import prometheus_client as prom
            from prometheus_client import multiprocess
        except ImportError as exc:  # pragma: no cover - the extra is installed by scripts/*
            raise RuntimeError(
                "--metrics needs the prometheus-client package: pip install 'dicomnet[metrics]'"
            ) from exc
        registry = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]
        server, _thread = prom.start_http_server(port, addr=host, registry=registry)
        self._server = server
        bound = server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        _stop(self._server)
        self._server = None
