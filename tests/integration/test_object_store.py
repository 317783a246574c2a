"""Originals in a real SeaweedFS: content-addressed keys, and the publisher storing them before the events."""

from __future__ import annotations

import pytest

from ragbus.object_store import S3ObjectStore
from schemas.documents import original_ref

pytestmark = [pytest.mark.integration]


def test_an_original_is_kept_under_its_hash_and_can_be_removed(object_store: S3ObjectStore) -> None:
    data = b"%PDF-1.4 pretend bytes"
    ref = object_store.put_original(data, "application/pdf")
    assert ref == original_ref(data) and ref.key == f"originals/{ref.sha256}"
    assert object_store.put_original(data, "application/pdf") == ref  # same bytes, same object
    assert object_store.get(ref.key) == data and object_store.keys("originals/") == [ref.key]
    object_store.delete(ref.key)
    assert not object_store.exists(ref.key) and object_store.get_json(ref.key) is None
