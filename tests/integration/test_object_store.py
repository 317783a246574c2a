"""Originals in a real SeaweedFS: content-addressed keys, and the publisher storing them before the events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ragbus.object_store import S3ObjectStore
from ragbus.settings import ObjectSettings
from schemas.documents import original_ref

pytestmark = [pytest.mark.integration]


@pytest.fixture
def store(seaweedfs: dict[str, str]) -> Iterator[S3ObjectStore]:
    settings = ObjectSettings(
        url=seaweedfs["RAGBUS_OBJECTS_URL"],
        access_key=seaweedfs["RAGBUS_OBJECTS_ACCESS_KEY"],
        secret_key=seaweedfs["RAGBUS_OBJECTS_SECRET_KEY"],
        bucket=f"t{uuid.uuid4().hex[:10]}",
    )
    opened = S3ObjectStore(settings)
    opened.ensure_bucket()
    try:
        yield opened
    finally:
        opened.close()


def test_an_original_is_kept_under_its_hash_and_can_be_removed(store: S3ObjectStore) -> None:
    data = b"%PDF-1.4 pretend bytes"
    ref = store.put_original(data, "application/pdf")
    assert ref == original_ref(data) and ref.key == f"originals/{ref.sha256}"
    assert store.put_original(data, "application/pdf") == ref  # same bytes, same object
    assert store.get(ref.key) == data and store.keys("originals/") == [ref.key]
    store.delete(ref.key)
    assert not store.exists(ref.key) and store.get_json(ref.key) is None
