"""Run hooks of the fleet: the publisher starts shipping once the run's event log is open, and several
hook objects (the POS link, the fleet, the metrics) share a run."""

from __future__ import annotations

from edge.fleet.publisher import Publisher
from edge.pipeline.frame import FrameResult
from edge.pipeline.runner import RunHooks
from edge.store.eventlog import EventLog


class FleetLink:
    """Starts the publisher on the run's event log. It is stopped by the caller after the run has
    returned, so the run's final status is in the outbox (and usually shipped) before it disconnects."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def start(self, event_log: EventLog, run_id: int, origin: float) -> None:
        self.publisher.start(event_log.path)

    def on_frame(self, result: FrameResult) -> None:
        pass

    def on_idle(self) -> None:
        pass

    def finish(self, status: str = "completed") -> None:
        pass


class HookChain:
    """Several RunHooks as one: started and fed in order, finished in reverse order."""

    def __init__(self, *hooks: RunHooks | None) -> None:
        self.hooks = [hook for hook in hooks if hook is not None]

    def start(self, event_log: EventLog, run_id: int, origin: float) -> None:
        for hook in self.hooks:
            hook.start(event_log, run_id, origin)

    def on_frame(self, result: FrameResult) -> None:
        for hook in self.hooks:
            hook.on_frame(result)

    def on_idle(self) -> None:
        for hook in self.hooks:
            hook.on_idle()

    def finish(self, status: str = "completed") -> None:
        for hook in reversed(self.hooks):
            hook.finish(status)
