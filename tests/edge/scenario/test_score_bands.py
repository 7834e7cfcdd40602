"""`score` splits the flag share of customers aged 25+ into 25-29 and 30+, beside 18-24 (keys kept)."""

from __future__ import annotations

from edge.scenario.score import age_band, score


def _customer(number: int, age: float, sold_without_check: bool) -> dict:
    return {
        "transaction_id": f"T{number}",
        "real_age": age,
        "sold_without_check": sold_without_check,
        "alcohol": False,  # no restricted scan: only the flag shares are under test
    }


def _flagged(number: int) -> dict:
    return {"txn": {}, "track": None, "alerts": [{"type": "sold_without_id_check", "latency_s": None}]}


def test_flag_shares_by_age_band() -> None:
    ages = [(20, True, True), (23, True, False), (25, True, True), (29.9, True, False), (27, False, True)]
    ages += [(30, True, True), (45, True, False), (61, True, False), (70, False, False)]
    truth = [_customer(i, age, sold) for i, (age, sold, _) in enumerate(ages)]
    run = {f"T{i}": _flagged(i) for i, (_, _, flagged) in enumerate(ages) if flagged}
    result = score(truth, run)
    assert (result["young_sold_without_check"], result["young_flag_share"]) == (2, 0.5)
    assert (result["adults_25_29_sold_without_check"], result["adult_25_29_false_flag_share"]) == (2, 0.5)
    assert (result["adults_30_plus_sold_without_check"], result["adult_30_plus_false_flag_share"]) == (3, 0.3333)
    assert (result["adults_sold_without_check"], result["adult_false_flag_share"]) == (5, 0.4)  # still there


def test_an_empty_band_has_no_share() -> None:
    result = score([_customer(0, 40, True)], {})
    assert result["adults_25_29_sold_without_check"] == 0 and result["adult_25_29_false_flag_share"] is None
    assert result["adult_30_plus_false_flag_share"] == 0.0


def test_every_age_falls_in_one_band_with_the_lower_bound_inside() -> None:
    ages = [0, 17.9, 18, 24.9, 25, 29.9, 30, 101]
    assert [age_band(age) for age in ages] == [
        "minors",
        "minors",
        "18_24",
        "18_24",
        "25_29",
        "25_29",
        "30_plus",
        "30_plus",
    ]
