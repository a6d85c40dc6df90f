"""C14: of two concurrent duplicate registrations exactly one succeeds; the other gets the error it
would have got had the first committed earlier, as ``Conflict``, never a database error."""

from __future__ import annotations

import eventlet
import pytest

from common.errors import Conflict
from services.users import passwords
from services.users.tests.integration.conftest import PASSWORD, Rendezvous, unique

pytestmark = pytest.mark.integration


@pytest.fixture
def in_lockstep(monkeypatch):
    """Both registrations pass every check before either inserts: each waits for the other on its
    way into the password hash, which comes after the checks and before the insert."""
    rendezvous = Rendezvous(parties=2)
    real_hash = passwords.hash_password

    def hash_in_lockstep(password):
        rendezvous.wait()
        return real_hash(password)

    monkeypatch.setattr(passwords, "hash_password", hash_in_lockstep)
    return rendezvous


def register_concurrently(rpc_proxy, *registrations):
    def attempt(fields):
        with rpc_proxy() as proxy:
            try:
                return proxy.register(password1=PASSWORD, password2=PASSWORD, **fields)
            except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
                return exc

    threads = [eventlet.spawn(attempt, fields) for fields in registrations]
    return [thread.wait() for thread in threads]


def test_same_email_with_different_case(users_container, rpc_proxy, in_lockstep):
    suffix = unique()
    outcomes = register_concurrently(
        rpc_proxy,
        dict(username=f"first_{suffix}", name="First", email=f"race.{suffix}@example.com"),
        dict(username=f"second_{suffix}", name="Second", email=f"RACE.{suffix}@example.com"),
    )
    assert in_lockstep.arrived == 2
    winners = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    losers = [outcome for outcome in outcomes if not isinstance(outcome, dict)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert isinstance(losers[0], Conflict), losers[0]
    assert (losers[0].errors, losers[0].raw) == ({"email": ["User with this Email already exists."]}, False)


def test_usernames_that_slugify_alike(users_container, rpc_proxy, in_lockstep):
    suffix = unique()
    typed = [f"Race-{suffix}", f"race-{suffix}-"]
    outcomes = register_concurrently(
        rpc_proxy,
        dict(username=typed[0], name="First", email=f"a.{suffix}@example.com"),
        dict(username=typed[1], name="Second", email=f"b.{suffix}@example.com"),
    )
    assert in_lockstep.arrived == 2
    winners = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, dict)]
    assert len(winners) == 1, outcomes
    assert outcomes[winners[0]]["username"] == f"race-{suffix}"
    loser = outcomes[1 - winners[0]]
    assert isinstance(loser, Conflict), loser
    # Sequentially, "Race-x" after "race-x" fails the form's case-insensitive check, while
    # "race-x-" passes it and collides only once slugified: a raw error.
    expected_raw = typed[1 - winners[0]] == f"race-{suffix}-"
    assert (loser.errors, loser.raw) == ({"username": ["User with this Username already exists."]}, expected_raw)
