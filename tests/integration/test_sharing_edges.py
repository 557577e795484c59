"""Share-link password tries under parallel guesses: never more checks than the limit.

The sequential tests (tests/integration/test_sharing.py) lock the link at the last wrong
try, so the bound on *reserved* tries is only reached when checks are still running. Here
the checks in flight are set up by hand: every try is reserved and none has finished.
"""

from __future__ import annotations

import pytest

from skinvault.db.models import ShareLink
from skinvault.errors import Busy, ConfigError
from skinvault.services import share_open, sharing
from tests.integration.test_sharing import Clinic, _share, clinic  # noqa: F401  (fixture)


def test_parallel_guesses_never_get_more_checks_than_the_limit(
    clinic: Clinic,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    link = _share(clinic, password="correct horse")
    limit = clinic.vault.settings.share_link_password_tries
    taken = [share_open._reserve_try(clinic.vault, link.id, limit) for _ in range(limit)]
    assert taken == list(range(1, limit + 1))  # every check still running holds its try
    monkeypatch.setattr(share_open, "_TRY_WAIT", 0.3)
    with pytest.raises(Busy, match="being opened many times at once"):
        share_open._reserve_try(clinic.vault, link.id, limit)  # one more: not checked
    share_open._give_back_try(clinic.vault, link.id)  # a right password gives its try back
    assert share_open._reserve_try(clinic.vault, link.id, limit) == limit


def test_the_recipient_is_named_in_one_to_320_characters(clinic: Clinic) -> None:  # noqa: F811
    for bad in ("", "   ", "a" * 321):
        with pytest.raises(ConfigError, match="name the recipient in 1 to 320 characters"):
            _share(clinic, recipient=bad)
    assert _share(clinic, recipient="a" * 320).token
    assert _share(clinic, recipient="  gp@surgery.example  ").token  # padding is not counted


def test_an_empty_link_password_is_refused(clinic: Clinic) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="a link password cannot be empty"):
        _share(clinic, password="")


def test_withdrawing_a_link_twice_keeps_the_first_withdrawal_time(clinic: Clinic) -> None:  # noqa: F811
    link = _share(clinic)
    first = clinic.clock.at
    sharing.revoke_share_link(clinic.vault, link_id=link.id, actor=clinic.patient)
    clinic.clock.advance(hours=1)
    sharing.revoke_share_link(clinic.vault, link_id=link.id, actor=clinic.patient)
    with clinic.vault.sessions() as session:
        row = session.get(ShareLink, link.id)
        assert row is not None and row.revoked_at == first
