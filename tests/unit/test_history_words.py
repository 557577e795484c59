"""Every action the patient's history can show on a photo has plain words, never the
audit log's raw action name ("measurement:view")."""

from __future__ import annotations

from skinvault.audit.actions import Action
from skinvault.services import history

#: Photo-named actions recorded on another object, so never a line about a photo:
#: a request for a new photo is on the patient record.
NOT_ON_A_PHOTO = {Action.PHOTO_REQUEST}


def test_every_action_on_a_photo_has_words() -> None:
    on_photos = [
        a for a in Action
        if a.value.startswith(("photo:", "measurement:")) and a not in NOT_ON_A_PHOTO
    ]  # fmt: skip
    missing = [a.value for a in on_photos if a.value not in history._VERBS]
    assert missing == []
    assert all(":" not in history._VERBS[a.value] for a in on_photos)
