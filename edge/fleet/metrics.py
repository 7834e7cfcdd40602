"""Prometheus metrics of a till: served on 127.0.0.1 (`metrics.port`) and/or written in node_exporter's
textfile format (`metrics.textfile`). Counters come from the run's own numbers, read at scrape time, so
updating them costs the frame loop nothing but an addition. Nothing is ever sent anywhere by agecam
itself: Prometheus (or node_exporter) scrapes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from edge.config import Config
from edge.errors import ConfigError, StateError
from edge.fleet import scrape

log = logging.getLogger(__name__)
SOURCE_STATES = ("live", "replaying", "reconnecting", "ended", "stopped")
INFERENCE_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)


class TillMetrics:
    """Run hooks (on_frame) plus the status callbacks of `agecam run`; `outbox` reads the publisher's numbers."""

    def __init__(self, config: Config) -> None:
        self.settings = config.metrics
        self.textfile = config.resolve(self.settings.textfile) if self.settings.textfile else None
        self.registry = CollectorRegistry(auto_describe=True)
        self.inference = Histogram(
            "agecam_inference_seconds", "Age model time per batch", buckets=INFERENCE_BUCKETS, registry=self.registry
        )
        self.values: dict[str, float] = {"frames": 0, "faces": 0, "fps": 0.0, "dropped": 0, "customers": 0}
        self.pos: dict[str, float] = {}
        self.source_state = "starting"
        self.outbox: Callable[[], dict[str, float]] | None = None
        self.registry.register(_Snapshot(self))
        self._server = None
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def open(self) -> None:
        """Bind the port (a port in use is exit 2, before the run starts) and start the textfile writer."""
        if self.settings.port is not None:
            try:
                self._server = scrape.serve(self.settings.host, self.settings.port, self.registry)
            except OSError as error:
                raise ConfigError(
                    f"metrics: cannot listen on {self.settings.host}:{self.settings.port} ({error.strerror})"
                ) from None
            log.info("metrics on http://%s:%d/metrics", self.settings.host, self._server.server_port)
        if self.textfile:
            self.write_textfile()  # fails early (exit 6) on an unwritable folder
            self._writer = threading.Thread(target=self._write_loop, name="metrics-textfile", daemon=True)
            self._writer.start()

    def close(self) -> None:
        self._stop.set()
        if self._writer:
            self._writer.join(timeout=5)
            self.write_textfile()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int | None:
        return self._server.server_port if self._server else None

    # --- run hooks and status callbacks --------------------------------------------------------------------

    def start(self, *_: object) -> None: ...

    def finish(self, status: str = "completed") -> None: ...

    def on_idle(self) -> None: ...

    def on_frame(self, result: object) -> None:
        self.values["frames"] += 1
        self.values["faces"] += len(result.faces)
        if getattr(result, "inference_s", None) is not None:
            self.inference.observe(result.inference_s)

    def on_status(self, status: dict, pos: dict | None = None) -> None:
        """The run's periodic status (fps, dropped, customers, source) and the POS link's counts."""
        self.values.update(fps=status["fps"], dropped=status["dropped"], customers=status["customers"])
        self.source_state = status["source"]
        if pos is not None:
            self.pos = dict(pos)

    # --- output --------------------------------------------------------------------------------------------

    def write_textfile(self) -> None:
        try:
            write_to_textfile(str(self.textfile), self.registry)  # written aside, then renamed: never half a file
        except OSError as error:
            raise StateError(f"metrics.textfile: cannot write {self.textfile} ({error.strerror})") from None

    def _write_loop(self) -> None:
        while not self._stop.wait(self.settings.textfile_every_s):
            try:
                self.write_textfile()
            except Exception as error:  # a full disk must not stop the till
                log.warning("metrics: %s", error)


class _Snapshot:
    """Reads the till's live numbers when Prometheus scrapes."""

    def __init__(self, metrics: TillMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield _counter("agecam_frames", "Frames processed", m.values["frames"])
        yield _counter("agecam_faces", "Faces seen on processed frames", m.values["faces"])
        yield _counter("agecam_dropped_frames", "Frames dropped because processing fell behind", m.values["dropped"])
        yield _counter("agecam_customers", "Customers counted in the statistics", m.values["customers"])
        yield _gauge("agecam_fps", "Frames per second over the last status period", m.values["fps"])
        state = GaugeMetricFamily("agecam_source_state", "1 for the video source's current state", labels=["state"])
        for name in sorted({*SOURCE_STATES, m.source_state}):
            state.add_metric([name], 1.0 if name == m.source_state else 0.0)
        yield state
        yield _counter("agecam_alerts", "id_check_required alerts raised", m.pos.get("alerts", 0))
        yield _counter("agecam_flags", "Flags recorded", m.pos.get("flags", 0))
        pos = CounterMetricFamily("agecam_pos_events", "POS events by result", labels=["result"])
        pos.add_metric(["accepted"], m.pos.get("events", 0))
        pos.add_metric(["rejected"], m.pos.get("rejected", 0))
        yield pos
        if m.outbox is not None:
            yield from _outbox(m.outbox())


def _outbox(numbers: dict[str, float]) -> Iterator[Metric]:
    yield _gauge("agecam_outbox_depth", "Records waiting in the outbox", numbers["depth"])
    yield _gauge("agecam_outbox_oldest_seconds", "Age of the oldest unshipped record", numbers["oldest_s"])
    yield _counter("agecam_outbox_shipped", "Records acknowledged by the broker", numbers["shipped"])
    yield _counter("agecam_outbox_dropped", "Unshipped records dropped to bound the outbox", numbers["dropped"])


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)
