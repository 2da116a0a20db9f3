"""Archive ingest on a bucket overlaps the writes with the checking of the next members
(IngestPipeline): the same reports, in member order, as one file at a time on local disk;
a row only for an image whose objects are stored; a failed write stops the upload there."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile

import pytest

from annotation.common import media
from annotation.common.media import StorageError
from annotation.datasets import ingest, ingest_pipeline, storage
from annotation.datasets.models import Image
from annotation.datasets.services import Upload, dataset_upload
from tests.factories import make_image_bytes, make_world

pytestmark = pytest.mark.django_db


def _zip(members: list[tuple[str, bytes]]) -> Upload:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    out.seek(0)
    return Upload("batch.zip", out)


def _members() -> list[tuple[str, bytes]]:
    images = [make_image_bytes(40 + i, 30, "PNG", seed=900 + i) for i in range(12)]
    members = [(f"img{i:02d}.png", data) for i, data in enumerate(images)]
    members.insert(3, ("notes.txt", b"not an image"))
    members.insert(6, ("again.png", images[1]))  # the same bytes as img01, in the same zip
    members.insert(9, ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40))
    return members


def _reported(name: str) -> str:
    """The name a member's report carries (refused by extension: with the archive's name)."""
    return f"batch.zip/{name}" if name == "notes.txt" else name


def _summary(files) -> list[tuple[str, str]]:
    return [(f.name, f.status) for f in files]


@pytest.fixture(params=["local", "s3"])
def store(request):
    return request.getfixturevalue("s3_media") if request.param == "s3" else None


def test_reports_and_rows_come_in_member_order(store):
    w = make_world()
    old = list(Image.objects.filter(dataset=w.dataset).values_list("id", flat=True))
    seen = []
    report = dataset_upload(dataset=w.dataset, uploads=[_zip(_members())], progress=seen.append)
    assert seen == report.files
    assert _summary(report.files) == [
        (
            _reported(name),
            "refused" if name in {"notes.txt", "again.png", "broken.png"} else "accepted",
        )
        for name, _ in _members()
    ]
    by_name = {f.name: f for f in report.files}
    assert by_name["again.png"].duplicate
    assert by_name["again.png"].image_id == by_name["img01.png"].image_id
    rows = list(Image.objects.filter(dataset=w.dataset).exclude(id__in=old).order_by("id"))
    assert [r.source_path for r in rows] == [f.name for f in report.files if f.status == "accepted"]
    for row in rows:
        assert media.exists(row.file) and media.exists(row.thumbnail)


def test_a_failed_write_keeps_what_was_stored_and_registers_nothing_after(s3_media, monkeypatch):
    w = make_world()
    old = list(Image.objects.filter(dataset=w.dataset).values_list("id", flat=True))
    members = _members()
    fifth = next(data for name, data in members if name == "img05.png")
    failing_thumb = storage.thumbnail_relpath(w.dataset.id, hashlib.sha256(fifth).hexdigest())
    real = media.put_bytes

    def failing(data: bytes, relative: str) -> None:
        if relative == failing_thumb:
            raise StorageError("cannot store: the S3 store answered 500")
        real(data, relative)

    monkeypatch.setattr(media, "put_bytes", failing)
    seen = []
    with pytest.raises(StorageError, match="answered 500"):
        dataset_upload(dataset=w.dataset, uploads=[_zip(members)], progress=seen.append)
    names = [_reported(name) for name, _ in members]
    before = names[: names.index("img05.png")]
    assert [f.name for f in seen] == before
    rows = Image.objects.filter(dataset=w.dataset).exclude(id__in=old)
    assert sorted(r.source_path for r in rows) == sorted(
        f.name for f in seen if f.status == "accepted"
    )
    assert len(rows) == 5
    for row in rows:
        assert media.exists(row.file) and media.exists(row.thumbnail)


def test_writes_in_flight_stay_bounded(s3_media, monkeypatch):
    w = make_world()
    old = list(Image.objects.filter(dataset=w.dataset).values_list("id", flat=True))
    gate = threading.Event()
    real = ingest._Prepared.store

    def held(self) -> None:
        gate.wait(30)
        real(self)

    monkeypatch.setattr(ingest._Prepared, "store", held)
    reports = []
    members = [(f"m{i}.png", make_image_bytes(20, 20, "PNG", seed=950 + i)) for i in range(5)]
    with ingest_pipeline.IngestPipeline(w.dataset, reports.append, workers=2, depth=2) as pipe:
        for name, data in members[:2]:
            pipe.ingest(name, io.BytesIO(data))
        assert reports == []  # written rows wait for their objects
        timer = threading.Timer(1.0, gate.set)
        timer.start()
        pipe.ingest(*_stream(members[2]))  # a third past the depth: waits for the first
        assert gate.is_set() and reports and reports[0].name == "m0.png"
        assert len(pipe._queue) <= 2
        for member in members[3:]:
            pipe.ingest(*_stream(member))
    timer.join()
    assert [r.name for r in reports] == [name for name, _ in members]
    assert all(r.status == "accepted" for r in reports)
    assert Image.objects.filter(dataset=w.dataset).exclude(id__in=old).count() == 5


def _stream(member: tuple[str, bytes]) -> tuple[str, io.BytesIO]:
    return member[0], io.BytesIO(member[1])
