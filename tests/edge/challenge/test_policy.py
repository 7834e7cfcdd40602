"""The Challenge policy as a pure state machine: frames and POS events in, alerts, flags and
transaction snapshots out. No camera, no HTTP, no database."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import pytest

from edge.challenge.carry import restore
from edge.challenge.events import parse_event
from edge.challenge.policy import ChallengePolicy
from edge.challenge.zone import ZoneFace, ZoneHistory, inside
from edge.config import PolicyConfig
from edge.store.pos_history import OpenRow
from edge.vision.customer import AgeEstimate

CATEGORIES = ["alcohol", "beer", "wine"]
CENTRE = (0.5, 0.4)


def estimate(age: float, samples: int = 5) -> AgeEstimate:
    return AgeEstimate(age, age - 3, age + 3, samples)


def event(kind: str, **fields) -> object:
    return parse_event({"type": kind, "till_id": "t1", "cashier_id": "c1", **fields})


def scan(category: str = "beer", **fields) -> object:
    return event("item_scanned", category=category, **fields)


class Till:
    """A policy fed with one customer (track 1) standing in the zone from t=0, frames every 0.1 s."""

    def __init__(self, age: float | None, **settings) -> None:
        self.policy = ChallengePolicy(PolicyConfig(**settings), CATEGORIES)
        self.age = age
        self.given: AgeEstimate | None = None  # an estimate to show instead of estimate(age)
        self.t = 0.0
        self.outcomes: list = []

    def frames(self, until: float, estimates: dict | None = None, faces: list | None = None) -> None:
        while self.t < until - 1e-9:
            self.t = round(self.t + 0.1, 3)
            seen = faces if faces is not None else [ZoneFace(1, *CENTRE, 0.05)]
            own = self.given or (estimate(self.age) if self.age else None)
            ages = estimates if estimates is not None else {1: own}
            self.outcomes += self.policy.observe(self.t, seen, ages)

    def send(self, pos_event: object) -> list[tuple[str, str, str | None]]:
        found = self.policy.handle(pos_event, self.t)
        self.outcomes += found
        return [(o.kind, o.type, o.severity) for o in found if o.kind != "transaction"]

    def sale(self, *events: object, end: str = "completed") -> list:
        """start, restricted scan at 2 s, the given events, end at 4 s; returns alerts and flags."""
        self.frames(1.0)
        self.send(event("transaction_start"))
        self.frames(2.0)
        self.send(scan())
        for extra in events:
            self.send(extra)
        self.frames(4.0)
        self.send(event("transaction_end", status=end))
        return self.decisions()

    def decisions(self) -> list[tuple[str, str, str | None]]:
        return [(o.kind, o.type, o.severity) for o in self.outcomes if o.kind != "transaction"]


def test_young_customer_gets_an_alert_at_the_scan_and_a_high_flag_when_sold_without_check():
    till = Till(age=16)
    assert till.sale() == [
        ("alert", "id_check_required", "info"),
        ("flag", "sold_without_id_check", "high"),
    ]
    alert = next(o for o in till.outcomes if o.kind == "alert")
    assert alert.t == 2.0 and alert.latency_s == 0.0
    assert alert.transaction.association.track_id == 1 and alert.customer.estimate.age == 16


def test_customer_between_18_and_threshold_is_a_medium_flag():
    assert Till(age=21).sale()[-1] == ("flag", "sold_without_id_check", "medium")


def test_customer_over_the_threshold_needs_no_check():
    till = Till(age=40)
    assert till.sale() == []
    final = till.outcomes[-1]
    assert final.kind == "transaction" and final.transaction.status == "completed"
    assert not final.transaction.check_required and final.transaction.association.track_id == 1


def test_threshold_is_configurable_challenge_21():
    assert Till(age=23, threshold=21).sale() == []
    assert Till(age=20, threshold=21).sale()[0] == ("alert", "id_check_required", "info")


def test_lower_bound_mode_compares_the_interval_low_end():
    assert Till(age=27).sale() == []
    assert Till(age=27, use_lower_bound=True).sale()[-1] == ("flag", "sold_without_id_check", "medium")


def test_risk_is_the_default_and_the_older_lower_bound_spelling_still_counts_without_a_mode():
    assert PolicyConfig().decision == "risk" and PolicyConfig().risk == 0.25
    assert PolicyConfig(use_lower_bound=True).decision == "lower_bound", "a config from before modes"
    assert PolicyConfig(use_lower_bound=True, mode="estimate").decision == "lower_bound"
    assert PolicyConfig(use_lower_bound=True, mode="risk").decision == "risk", "an explicit mode wins"


def test_a_passed_id_check_after_the_alert_clears_the_sale():
    till = Till(age=16)
    assert till.sale(event("id_checked", result="passed")) == [("alert", "id_check_required", "info")]
    assert till.outcomes[-1].transaction.id_checks == ["passed"]


def test_a_sale_after_a_failed_check_is_a_high_flag_and_a_voided_one_is_not_flagged():
    assert Till(age=21).sale(event("id_checked", result="failed"))[-1] == (
        "flag",
        "sold_after_failed_id_check",
        "high",
    )
    assert Till(age=16).sale(event("id_checked", result="refused"), end="voided") == [
        ("alert", "id_check_required", "info")
    ]


def test_a_sale_after_a_failed_check_is_flagged_whatever_the_face_showed():
    """A failed or refused check then a completed sale used to be flagged only when the camera also saw
    someone under the threshold: an adult-looking buyer, or no usable face, lost the flag or its severity."""
    failed_sale = [("flag", "sold_after_failed_id_check", "high")]
    assert Till(age=40).sale(event("id_checked", result="failed")) == failed_sale, "was no flag"
    assert Till(age=40).sale(event("id_checked", result="refused")) == failed_sale
    assert Till(age=None).sale(event("id_checked", result="failed")) == failed_sale, "was no_face, medium"
    till = Till(age=40)
    till.frames(1.0)
    till.send(event("transaction_start"))
    till.send(scan())
    till.send(event("id_checked", result="refused"))
    assert till.send(event("transaction_start")) == [("flag", "unresolved", "high")], "unresolved: may have sold"


def test_an_uncertain_customer_is_not_cleared_by_an_older_looking_companion():
    """The customer, seen with too few samples, was asked for ID; at the sale the stand-in for a customer
    without a usable estimate took their companion (40 % of the zone, aged 45), and the flag was lost."""
    till = Till(age=None, min_samples=5)
    faces = [ZoneFace(1, *CENTRE, 0.06), ZoneFace(2, 0.45, 0.45, 0.04)]
    ages = {1: AgeEstimate(15, 12, 18, 2), 2: estimate(45)}
    till.frames(1.0, ages, faces)
    till.send(event("transaction_start"))
    till.frames(2.0, ages, faces)
    assert till.send(scan()) == [("alert", "id_check_required", "info")]
    till.frames(4.0, ages, faces)
    assert till.send(event("transaction_end")) == [("flag", "uncertain_no_check", "medium")]
    flag = next(o for o in till.outcomes if o.kind == "flag")
    assert flag.transaction.association.track_id == 1 and flag.customer.estimate.samples == 2


def test_no_usable_face_is_flagged_no_face():
    till = Till(age=None)
    assert till.sale() == [("flag", "no_face", "medium")]


def test_a_customer_seen_with_too_few_samples_is_uncertain_asked_for_id_and_flagged_without_a_check():
    uncertain = [("alert", "id_check_required", "info"), ("flag", "uncertain_no_check", "medium")]
    assert Till(age=40, min_samples=10).sale() == uncertain, "too little evidence: even an adult look is asked"
    assert Till(age=40, min_samples=5).sale() == [], "5 samples are enough evidence, and 40 needs no check"


def test_risk_mode_decides_on_the_probability_of_being_under_the_threshold():
    def sale(age: float, spread: float, risk: float) -> list:
        till = Till(age=age, mode="risk", risk=risk)
        till.given = AgeEstimate(age, age - spread, age + spread, 5)  # no p_under: read off the interval
        return till.sale()

    flagged = [("alert", "id_check_required", "info"), ("flag", "sold_without_id_check", "medium")]
    assert sale(27, 2, 0.5) == [], "27 with a narrow interval: P(<25) is small"
    assert sale(27, 8, 0.3) == flagged, "27 but the interval reaches far below 25: P(<25) is about 0.3"
    assert sale(27, 8, 0.5) == []
    till = Till(age=30, mode="risk", risk=0.2)
    till.given = AgeEstimate(30, 28, 32, 5, p_under=0.25)  # the mixture's own probability wins
    assert till.sale() == flagged


def test_only_restricted_items_matter():
    till = Till(age=16)
    till.frames(1.0)
    till.send(event("transaction_start"))
    assert till.send(scan("bakery")) == []
    assert till.send(scan("BEER")) == [("alert", "id_check_required", "info")], "categories ignore case"
    flagged = Till(age=16)
    flagged.frames(1.0)
    assert flagged.send(scan("toys", age_restricted=True)) == [("alert", "id_check_required", "info")]


def test_alert_waits_for_the_first_estimate_and_reports_the_latency():
    till = Till(age=16)
    till.frames(1.0, estimates={1: None})
    till.send(event("transaction_start"))
    till.frames(2.0, estimates={1: None})
    assert till.send(scan()) == []
    till.frames(2.3)
    alert = next(o for o in till.outcomes if o.kind == "alert")
    assert alert.t == pytest.approx(2.1) and alert.latency_s == pytest.approx(0.1)


def test_item_without_transaction_start_opens_one_and_a_new_start_leaves_the_open_one_unresolved():
    till = Till(age=16)
    till.frames(1.0)
    assert till.send(scan()) == [("alert", "id_check_required", "info")]
    assert till.send(event("transaction_start")) == [("flag", "unresolved", "high")], "flagged, not called sold"
    first = next(o.transaction for o in till.outcomes if o.kind == "flag")
    assert (first.number, first.status, first.resolution, first.check_required) == (1, "unresolved", "superseded", True)
    assert {o.transaction.number for o in till.outcomes} == {1, 2}
    assert list(till.policy.open) == ["t1"] and till.policy.open["t1"].number == 2


def test_a_late_check_of_an_ended_sale_never_passes_the_next_customers_sale():
    """The POS retries T1's `id_checked passed` (its reply was lost) while T2, an unchecked minor's sale, is
    open on the till: it used to pass T2, so T2 completed without its flag."""
    till = Till(age=16)
    till.frames(1.0)
    till.send(event("transaction_start", transaction_id="T1"))
    till.send(scan(transaction_id="T1"))
    till.send(event("id_checked", result="passed", transaction_id="T1"))
    assert till.send(event("transaction_end", transaction_id="T1")) == []  # checked: cleared
    till.send(event("transaction_start", transaction_id="T2"))
    till.send(scan(transaction_id="T2"))
    assert till.send(event("id_checked", result="passed", transaction_id="T1")) == []  # a late one: ignored
    till.frames(4.0)
    assert till.send(event("transaction_end", transaction_id="T2")) == [("flag", "sold_without_id_check", "high")]


def test_a_check_or_end_of_a_sale_the_policy_does_not_know_leaves_the_open_sale_alone():
    """A check of a sale that ended long ago (or before a restart) used to start a sale of its own: the open one
    was superseded and flagged 'unresolved' though it went on, and its own check and end were then ignored."""
    for own in ("passed", None):
        till = Till(age=16)
        till.frames(1.0)
        till.send(event("transaction_start", transaction_id="T2"))
        till.send(scan(transaction_id="T2"))
        assert till.send(event("id_checked", result="passed", transaction_id="T0")) == []
        assert till.send(event("transaction_end", transaction_id="T0")) == []
        if own:
            till.send(event("id_checked", result=own, transaction_id="T2"))
        till.frames(4.0)
        flags = [] if own else [("flag", "sold_without_id_check", "high")]
        assert till.send(event("transaction_end", transaction_id="T2")) == flags
        assert till.policy.open == {} and till.outcomes[-1].transaction.status == "completed"


def test_a_late_check_of_an_ended_sale_never_passes_an_open_sale_without_a_pos_id():
    """T2 arrived without transaction_id: T1's retried `id_checked passed` was taken as T2's, so T2 (an
    unchecked minor's sale) completed without its flag."""
    till = Till(age=16)
    till.frames(1.0)
    till.send(event("transaction_start", transaction_id="T1"))
    till.send(scan(transaction_id="T1"))
    till.send(event("id_checked", result="passed", transaction_id="T1"))
    till.send(event("transaction_end", transaction_id="T1"))
    till.send(event("transaction_start"))
    till.send(scan())
    assert till.send(event("id_checked", result="passed", transaction_id="T1")) == []  # a late one: ignored
    till.frames(4.0)
    assert till.send(event("transaction_end")) == [("flag", "sold_without_id_check", "high")]
    assert till.policy.open == {} and till.outcomes[-1].transaction.pos_id is None


def test_a_late_event_of_an_ended_sale_opens_no_sale_when_none_is_open():
    """A retried scan of a checked sale that had ended, with no sale open on the till, opened a sale that the
    POS never ends: it expired 'unresolved' with alcohol and no check, a false flag on a checked customer."""
    till = Till(age=16, transaction_max_s=30)
    till.frames(1.0)
    till.send(event("transaction_start", transaction_id="T1"))
    till.send(scan(transaction_id="T1"))
    till.send(event("id_checked", result="passed", transaction_id="T1"))
    till.send(event("transaction_end", transaction_id="T1"))
    before = till.decisions()
    for late in (scan(transaction_id="T1"), event("id_checked", result="passed", transaction_id="T1")):
        assert till.send(late) == [] and till.policy.open == {}
    assert till.send(event("transaction_end", transaction_id="T1")) == [] and till.policy.open == {}
    till.frames(40.0)
    assert till.decisions() == before == [("alert", "id_check_required", "info")], "nothing after the sale"


def test_the_memory_of_ended_sales_is_capped_and_forgets_the_oldest_first(monkeypatch):
    """A POS that ends thousands of sales within the association window (many tills, or a flood) must not grow
    the memory without bound; what is forgotten is the oldest sale, whose late events are the least likely."""
    monkeypatch.setattr("edge.challenge.late_events.MAX_CLOSED", 3)
    till = Till(age=30)
    till.frames(1.0)
    for number in range(1, 6):
        till.send(event("transaction_start", transaction_id=f"T{number}"))
        till.send(event("transaction_end", transaction_id=f"T{number}"))
    till.frames(1.2)  # the next frame trims the memory
    assert list(till.policy.closed) == [("t1", "T3"), ("t1", "T4"), ("t1", "T5")]
    assert till.send(event("id_checked", result="passed", transaction_id="T5")) == []  # still known: ignored
    assert till.policy.open == {}
    till.send(event("item_scanned", category="beer", transaction_id="T1"))  # forgotten: a sale of its own
    assert [txn.pos_id for txn in till.policy.open.values()] == ["T1"]


def test_the_customer_is_the_track_dominating_the_zone_not_a_passer_by():
    till = Till(age=None)
    customer, passer_by, outside = (
        ZoneFace(7, 0.5, 0.4, 0.06),
        ZoneFace(8, 0.45, 0.3, 0.01),
        ZoneFace(9, 0.05, 0.4, 0.2),
    )
    ages = {7: estimate(16), 8: estimate(60), 9: estimate(70)}
    till.frames(3.0, estimates=ages, faces=[customer, passer_by, outside])
    till.send(event("transaction_start"))
    assert till.send(scan()) == [("alert", "id_check_required", "info")]
    association = till.outcomes[-1].transaction.association
    assert association.track_id == 7 and 0.8 < association.share < 1
    assert set(association.presence) == {7, 8}, "a face outside the zone is no candidate"


def test_the_customer_who_just_arrived_outweighs_the_one_walking_away():
    history = ZoneHistory([(0, 0), (1, 0), (1, 1), (0, 1)], keep_s=60)
    for step in range(30):  # the previous customer for the first 1.4 s, the new one from 1.5 s
        t = step * 0.1
        history.observe(t, [ZoneFace(1 if t < 1.45 else 2, 0.5, 0.5, 0.05)])
    assert history.dominant(0.0, 2.9).track_id == 2
    assert history.dominant(0.0, 1.0).track_id == 1


def test_point_in_polygon():
    triangle = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
    assert inside(triangle, 0.2, 0.2) and not inside(triangle, 0.8, 0.8)


def test_an_open_transaction_expires_after_transaction_max_s_with_the_flag_it_would_have_had():
    till = Till(age=16, transaction_max_s=10)
    till.frames(1.0)
    till.send(event("transaction_start"))
    till.send(scan())
    till.send(event("transaction_start", till_id="t2"))  # an idle one: no restricted item, no flag
    till.frames(10.9)
    assert set(till.policy.open) == {"t1", "t2"}
    till.frames(11.2)
    assert till.decisions() == [("alert", "id_check_required", "info"), ("flag", "unresolved", "high")]
    closed = {o.transaction.till_id: o.transaction for o in till.outcomes if o.transaction.status != "open"}
    assert {till_id: (txn.status, txn.resolution) for till_id, txn in closed.items()} == {
        "t1": ("unresolved", "expired"),
        "t2": ("unresolved", "expired"),
    }
    assert closed["t1"].check_required and not closed["t2"].check_required
    assert not till.policy.open and not till.policy.awaiting


def test_the_oldest_open_transaction_is_evicted_at_the_cap():
    till = Till(age=None, max_open_transactions=3)
    till.frames(1.0)
    for till_id in ("a", "b", "c", "d"):
        till.send(event("transaction_start", till_id=till_id))
    evicted = [o.transaction for o in till.outcomes if o.transaction.status != "open"]
    assert [(txn.till_id, txn.status, txn.resolution) for txn in evicted] == [("a", "unresolved", "evicted")]
    assert list(till.policy.open) == ["b", "c", "d"]


def test_per_frame_work_does_not_grow_with_idle_open_transactions():
    """Before the cap, each frame looked at every open transaction: 10,000 cost 15-26 ms a frame."""
    till = Till(age=30, max_open_transactions=100_000)
    till.frames(1.0)
    for number in range(50_000):  # a POS that opens transactions for till ids nobody ever closes
        till.policy.handle(event("transaction_start", till_id=f"ghost-{number}"), till.t)
    till.send(event("transaction_start"))
    till.send(scan())  # the one transaction still awaiting its customer's alert
    assert len(till.policy.open) == 50_001 and list(till.policy.awaiting) == ["t1"]
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        till.frames(round(till.t + 0.1, 3))
        timings.append(time.perf_counter() - start)
    assert statistics.median(timings) < 0.002, f"median {statistics.median(timings) * 1000:.2f} ms a frame"


def test_a_stop_keeps_open_transactions_open_and_the_end_of_a_replay_decides_them():
    till = Till(age=16)
    till.frames(1.0)
    till.send(event("transaction_start"))
    till.send(scan())
    kept = till.policy.carry_over(till.t)
    assert [(o.kind, o.transaction.status) for o in kept] == [("transaction", "open")]
    assert list(till.policy.open) == ["t1"], "a stop is not the end of the sale"
    ended = [(o.kind, o.type, o.transaction.status, o.transaction.resolution) for o in till.policy.close_all(till.t)]
    assert ended == [
        ("flag", "unresolved", "unresolved", "replay_ended"),
        ("transaction", "transaction", "unresolved", "replay_ended"),
    ]


EARLIER = OpenRow(
    run_id=1,
    number=4,
    till_id="t1",
    cashier_id="c1",
    pos_id="T4",
    started=1000.0,
    restricted=1,
    first_restricted=1002.0,
    id_checks=[],
    check_required=True,
    alerted=True,
    association={"track_id": 3, "share": 1.0, "window": [-1.0, 2.0], "presence": {"3": 0.1}},
    estimate=estimate(16),
)


def test_a_resumed_transaction_keeps_its_earlier_customer_and_completes_with_the_flag():
    till = Till(age=None)
    till.policy.resume(restore(EARLIER, origin=1010.0))
    till.frames(1.0, faces=[ZoneFace(3, *CENTRE, 0.05)])  # this run's track 3 is someone else
    assert till.decisions() == [], "alerted before the restart: not again"
    assert till.send(event("transaction_end")) == [("flag", "sold_without_id_check", "high")]
    flag = next(o for o in till.outcomes if o.kind == "flag")
    assert flag.customer.estimate.age == 16 and flag.transaction.started == -10.0
    assert (flag.transaction.number, flag.transaction.carried.run_id, flag.transaction.association.run_id) == (4, 1, 1)


def test_a_resumed_transaction_without_an_estimate_finds_its_customer_in_this_run():
    till = Till(age=16)
    till.policy.resume(restore(replace(EARLIER, estimate=None, alerted=False, check_required=False), 1010.0))
    assert till.policy.open["t1"].association is None and list(till.policy.awaiting) == ["t1"]
    till.frames(0.5)
    assert till.decisions() == [("alert", "id_check_required", "info")]
    assert till.outcomes[-1].transaction.association.track_id == 1
    assert till.outcomes[-1].latency_s == pytest.approx(8.1)
