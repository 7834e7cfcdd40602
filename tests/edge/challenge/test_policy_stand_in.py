"""A customer whose face gave no usable estimate (the model failed on it, say) is flagged no_face at a
sale: the age of a passer-by or of the previous customer walking away must not decide for them (issue
#14, item 4: no flag is lost to a bad model output). A second track on the customer may still stand in."""

from __future__ import annotations

from edge.challenge.events import parse_event
from edge.challenge.policy import ChallengePolicy
from edge.challenge.zone import ZoneFace
from edge.config import PolicyConfig
from edge.vision.customer import AgeEstimate


def event(kind: str, **fields) -> object:
    return parse_event({"type": kind, "till_id": "t1", **fields})


def sale(frames: list[tuple[float, list[ZoneFace], dict]]) -> list[tuple[str, str]]:
    """Feed frames (t, faces, estimates); a restricted scan at t=3 and the sale's end at t=6."""
    policy = ChallengePolicy(PolicyConfig(threshold=25), ["beer"])
    outcomes = []
    for t, faces, estimates in frames:
        if t == 3.0:
            outcomes += policy.handle(event("transaction_start"), t)
            outcomes += policy.handle(event("item_scanned", category="beer"), t)
        outcomes += policy.observe(t, faces, estimates)
    outcomes += policy.handle(event("transaction_end"), 6.0)
    return [(o.kind, o.type) for o in outcomes if o.kind != "transaction"]


ADULT = AgeEstimate(45, 42, 48, 5)


def test_the_previous_customer_walking_away_does_not_stand_in_for_an_unreadable_face():
    frames = []
    for step in range(60):
        t = round(step * 0.1, 1)
        leaving = [ZoneFace(1, 0.5, 0.4, 0.05)] if t < 1.0 else []  # the adult leaves as the minor steps up
        customer = [ZoneFace(2, 0.5, 0.4, 0.06)] if t >= 0.8 else []
        frames.append((t, leaving + customer, {1: ADULT, 2: None}))
    assert sale(frames) == [("flag", "no_face")]


def test_a_second_track_on_the_customer_still_stands_in():
    frames = []
    for step in range(60):  # the detector found the face twice: two tracks, one person, one estimate
        faces = [ZoneFace(3, 0.5, 0.4, 0.05), ZoneFace(4, 0.52, 0.41, 0.06)]
        frames.append((round(step * 0.1, 1), faces, {3: AgeEstimate(16, 14, 18, 5), 4: None}))
    assert sale(frames) == [("flag", "sold_without_id_check")]  # the stand-in decides at the sale
