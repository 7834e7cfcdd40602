"""The review app over a copy of the replayed scenario's event log (`default_run`), with one reviewer and
one viewer account, through Starlette's test client (real HTTP semantics, real SQLite)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from edge.config import load_config
from edge.review.auth import hash_password

from review_app import PASSWORD, ZONE, log_in


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def review_config(tmp_path: Path, default_run, password_hash) -> Callable[..., Path]:
    """The scenario's config plus a review section (accounts rita: reviewer, vic: viewer); keys override."""
    _, scenario_config, _ = default_run

    def write(**review: object) -> Path:
        data = yaml.safe_load(scenario_config.read_text())
        accounts = {
            "rita": {"role": "reviewer", "password_hash": password_hash},
            "vic": {"role": "viewer", "password_hash": password_hash},
        }
        data["review"] = {"timezone": ZONE, "accounts": accounts, **review}
        path = tmp_path / "review.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


@pytest.fixture
def review_db(tmp_path: Path, default_run) -> Path:
    """A copy of the scenario's event log, so reviews written by one test never leak into another."""
    copy = tmp_path / "state" / "agecam.db"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(default_run[2], copy)
    return copy


@pytest.fixture
def app_client(review_config, review_db) -> Iterator[Callable[..., object]]:
    """make(config=None, login=None): a TestClient over review_db, logged in as `login` if given."""
    with warnings.catch_warnings():  # starlette's notice that httpx2 exists; httpx works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from edge.review.app import create_app

    clients = []

    def make(config: Path | None = None, login: str | None = None, **options: object) -> TestClient:
        app = create_app(load_config(config or review_config()), review_db)
        client = TestClient(app, base_url="http://127.0.0.1", **options)
        client.__enter__()
        clients.append(client)
        if login:
            log_in(client, login)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
