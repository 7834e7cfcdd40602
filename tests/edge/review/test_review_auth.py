"""Password hashes, sessions and the login throttle on their own."""

from __future__ import annotations

import time

from edge.review.auth import LoginThrottle, Sessions, hash_password, verify_password


def test_password_hashes_are_salted_scrypt_and_verify_in_constant_form():
    first, second = hash_password("pw-12345678"), hash_password("pw-12345678")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert verify_password("pw-12345678", first) and not verify_password("pw-12345679", first)
    assert not verify_password("anything", None), "an unknown name never matches"
    assert not verify_password("x", "scrypt$16384$8$1$!!!$!!!"), "a malformed hash is a failure, not a crash"


def test_parallel_guesses_count_before_their_passwords_are_checked():
    throttle = LoginThrottle(limit=3, window_s=60)
    assert [throttle.begin("rita", "10.0.0.9") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.begin("rita", "10.0.0.9") > 0, "three attempts in flight use up the allowance"
    assert throttle.begin("rita", "10.0.0.10") > 0, "the name is locked from any address"
    assert throttle.begin("sam", "10.0.0.9") > 0, "and the address for any name"
    assert throttle.begin("sam", "10.0.0.11") == 0.0


def test_a_success_clears_the_names_failures():
    throttle = LoginThrottle(limit=2, window_s=60)
    throttle.begin("rita", "a")
    throttle.begin("rita", "b")
    throttle.succeeded("rita", "b")
    assert throttle.begin("rita", "c") == 0.0


def test_sessions_need_the_signature_and_end_when_idle():
    sessions = Sessions(idle_s=0.2)
    cookie, session = sessions.start("rita", "reviewer")
    assert sessions.get(cookie) is session and session.can_review
    sid = cookie.split(".")[0]
    assert sessions.get(f"{sid}.{'0' * 64}") is None and sessions.get(sid) is None
    time.sleep(0.3)
    assert sessions.get(cookie) is None
