"""A project's bucket sources: admins only (other members 403, other tenants 404), credentials
stored encrypted and never shown, logged or put in an error; and a wrong endpoint, a missing
bucket or refused credentials refused with a message naming the field, losing nothing."""

from __future__ import annotations

import logging

import pytest

from annotation.datasets import buckets
from annotation.datasets.models import BucketSource, Image
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from annotation.projects.models import Membership, Role
from annotation.projects.services import project_create
from annotation.users.models import User
from tests.annotation.datasets.buckets_world import (
    KEY_ID,
    SECRET,
    Bucket,
    add_source,
    admin,
    allow_the_test_server,  # noqa: F401 (autouse fixture)
    attach,
    fill,
)
from tests.factories import make_world
from tests.s3 import free_port

pytestmark = pytest.mark.django_db


def _no_credentials_in(text: str) -> None:
    assert SECRET not in text and KEY_ID not in text


def test_credentials_are_encrypted_and_never_returned(s3_server, caplog):
    caplog.set_level(logging.DEBUG)
    w = make_world()
    bucket = Bucket(s3_server)
    fill(bucket)
    manager = admin(w.users["manager"])
    created = add_source(manager, w.project.id, bucket, prefix="/photos/")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["credentials_set"] is True and body["access_key_id_hint"] == "…" + KEY_ID[-4:]
    assert body["prefix"] == "photos" and "access_key_id" not in body
    source = BucketSource.objects.get(pk=body["id"])
    # at rest: neither credential in the row, both readable with the key
    for column in (source.access_key_id_encrypted, source.secret_access_key_encrypted):
        _no_credentials_in(column)
    assert buckets.decrypt(source.secret_access_key_encrypted) == SECRET

    texts = [created.content.decode()]
    texts.append(manager.get(f"/api/projects/{w.project.id}/bucket-sources/").content.decode())
    texts.append(manager.get(f"/api/bucket-sources/{source.id}/").content.decode())
    patched = manager.patch(f"/api/bucket-sources/{source.id}/", {"region": "eu-west-1"})
    assert patched.status_code == 200 and patched.json()["credentials_set"] is True
    texts.append(patched.content.decode())
    checked = manager.post(f"/api/bucket-sources/{source.id}/check/")
    assert checked.status_code == 200 and checked.json()["objects_seen"] == 7
    job = manager.post(
        f"/api/datasets/{w.dataset.id}/attach/", {"bucket_id": source.id}, format="json"
    )
    assert job.status_code == 201, job.content
    texts.append(job.content.decode())
    job_execute(job.json()["id"])
    texts.append(manager.get(f"/api/jobs/{job.json()['id']}/").content.decode())
    assert Image.objects.filter(source_path__startswith=f"bucket/{source.id}/").count() == 4
    for text in [*texts, caplog.text]:
        _no_credentials_in(text)

    # one credential alone is refused; both empty is anonymous access
    half = manager.patch(f"/api/bucket-sources/{source.id}/", {"access_key_id": "x" * 20})
    assert half.status_code == 400 and "together" in half.json()["error"]["message"]
    cleared = manager.patch(
        f"/api/bucket-sources/{source.id}/", {"access_key_id": "", "secret_access_key": ""}
    )
    assert cleared.json()["credentials_set"] is False
    assert cleared.json()["access_key_id_hint"] == ""


def test_a_changed_key_asks_for_the_credentials_again(s3_server, settings):
    w = make_world()
    bucket = Bucket(s3_server)
    owner = admin(w.users["owner"])
    source_id = add_source(owner, w.project.id, bucket).json()["id"]
    settings.MASKWRIGHT_CREDENTIALS_KEY = "another key than the one they were stored with"
    refused = owner.post(f"/api/bucket-sources/{source_id}/check/")
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert "cannot be decrypted" in message and "MASKWRIGHT_CREDENTIALS_KEY" in message
    _no_credentials_in(refused.content.decode())


def test_only_admins_of_the_project_manage_sources(s3_server):
    w = make_world()
    bucket = Bucket(s3_server)
    source_id = add_source(admin(w.users["owner"]), w.project.id, bucket).json()["id"]
    sources = f"/api/projects/{w.project.id}/bucket-sources/"
    for name in ("reviewer", "annotator"):
        member = admin(w.users[name])
        assert member.get(sources).status_code == 403
        assert add_source(member, w.project.id, bucket, name="x").status_code == 403
        assert member.get(f"/api/bucket-sources/{source_id}/").status_code == 403
        assert member.post(f"/api/bucket-sources/{source_id}/check/").status_code == 403
        assert attach(member, w.dataset.id, source_id).status_code == 403
    outsider = admin(w.users["outsider"])
    assert outsider.get(sources).status_code == 404
    assert outsider.get(f"/api/bucket-sources/{source_id}/").status_code == 404
    assert outsider.delete(f"/api/bucket-sources/{source_id}/").status_code == 404
    assert attach(outsider, w.dataset.id, source_id).status_code == 404

    # another tenant's admin can neither see the source nor attach it to their own dataset
    other_owner = User.objects.create_user(username="other-owner", password="pw-12345678")
    other = project_create(name="Fish", owner=other_owner)
    Membership.objects.get_or_create(project=other, user=other_owner, defaults={"role": Role.OWNER})
    theirs = admin(other_owner)
    their_dataset = theirs.post(
        f"/api/projects/{other.id}/datasets/", {"name": "d"}, format="json"
    ).json()
    assert theirs.get(f"/api/bucket-sources/{source_id}/").status_code == 404
    refused = attach(theirs, their_dataset["id"], source_id)
    assert refused.status_code == 404, refused.content
    assert not Job.objects.filter(kind="attach").exists()
    # the jobs API does not launch attaches (only the dataset's attach does, after its check)
    launched = theirs.post(
        f"/api/projects/{other.id}/jobs/",
        {"dataset_id": their_dataset["id"], "kind": "attach", "params": {"bucket_id": source_id}},
        format="json",
    )
    assert launched.status_code == 400


@pytest.mark.parametrize(
    ("case", "field", "form_field"),
    [
        ("endpoint", "endpoint_url", "endpoint_url"),
        ("bucket", "the source's bucket", "bucket"),
        ("credentials", "access_key_id / secret_access_key", "access_key_id"),
    ],
)
def test_a_broken_source_is_refused_with_the_field_to_fix(
    s3_server, settings, case, field, form_field
):
    w = make_world()
    bucket = Bucket(s3_server)
    fill(bucket)
    owner = admin(w.users["owner"])
    good = add_source(owner, w.project.id, bucket).json()["id"]
    job = owner.post(f"/api/datasets/{w.dataset.id}/attach/", {"bucket_id": good}, format="json")
    job_execute(job.json()["id"])
    stored = set(Image.objects.values_list("id", "file"))
    overrides: dict[str, object] = {"name": f"broken-{case}"}
    if case == "endpoint":
        overrides["endpoint_url"] = dead = f"http://127.0.0.1:{free_port()}"
        settings.MASKWRIGHT_BUCKET_ENDPOINTS = [*settings.MASKWRIGHT_BUCKET_ENDPOINTS, dead]
    elif case == "bucket":
        overrides["bucket"] = "no-such-bucket"
    source_id = add_source(owner, w.project.id, bucket, **overrides).json()["id"]
    if case == "credentials":
        s3_server.require_credentials(True)
    try:
        refused = attach(owner, w.dataset.id, source_id)
        assert refused.status_code == 400, refused.content
        message = refused.json()["error"]["message"]
        assert field in message and f"broken-{case}" in message
        # the form's field, as a machine reads it (the browser marks that input)
        assert refused.json()["error"]["detail"]["field"] == form_field
        _no_credentials_in(refused.content.decode())

        # broken after the launch: the job fails with the same clear message
        job = Job.objects.create(
            project=w.project,
            dataset=w.dataset,
            kind="attach",
            params={"bucket_id": source_id, "prefix": "photos"},
        )
        assert job_execute(job.id) == "failed"
        job.refresh_from_db()
        assert field in job.error and "Traceback" not in job.error
        _no_credentials_in(job.error)
    finally:
        s3_server.require_credentials(False)
    assert set(Image.objects.values_list("id", "file")) == stored  # nothing lost or added


def test_endpoints_outside_the_allowed_list_are_refused(s3_server, settings):
    w = make_world()
    bucket = Bucket(s3_server)
    fill(bucket)
    owner = admin(w.users["owner"])
    source_id = add_source(owner, w.project.id, bucket).json()["id"]
    settings.MASKWRIGHT_BUCKET_ENDPOINTS = ["https://minio.example.org", "aws"]
    lookalike = s3_server.endpoint.replace("127.0.0.1", "minio.example.org.attacker.net")
    for endpoint in (s3_server.endpoint, lookalike, "http://minio.example.org"):
        refused = add_source(owner, w.project.id, bucket, name="x", endpoint_url=endpoint)
        assert refused.status_code == 400, (endpoint, refused.content)
        assert "MASKWRIGHT_BUCKET_ENDPOINTS" in refused.json()["error"]["message"]
    # a source saved before the list was set is refused at use, the dataset unchanged
    count = Image.objects.filter(dataset=w.dataset).count()
    assert attach(owner, w.dataset.id, source_id).status_code == 400
    assert Image.objects.filter(dataset=w.dataset).count() == count
    allowed = add_source(
        owner, w.project.id, bucket, name="y", endpoint_url="https://minio.example.org:443/"
    )
    assert allowed.status_code == 201, allowed.content
    aws = add_source(owner, w.project.id, bucket, name="z", endpoint_url="")
    assert aws.status_code == 201 and aws.json()["endpoint_url"] == ""


def test_with_no_list_an_endpoint_on_this_hosts_own_network_is_refused(s3_server, settings):
    w = make_world()
    owner = admin(w.users["owner"])
    settings.MASKWRIGHT_BUCKET_ENDPOINTS = []
    bucket = Bucket(s3_server)
    for endpoint in (
        s3_server.endpoint,  # loopback
        "http://localhost:9000",
        "http://10.1.2.3:9000",
        "http://169.254.169.254",  # a cloud's metadata service
        "http://[::1]:9000",
    ):
        refused = add_source(owner, w.project.id, bucket, name="x", endpoint_url=endpoint)
        assert refused.status_code == 400, (endpoint, refused.content)
        message = refused.json()["error"]["message"]
        assert "own network" in message and "MASKWRIGHT_BUCKET_ENDPOINTS" in message
    assert not BucketSource.objects.filter(project=w.project).exists()
    # a public address is taken (whether its store answers is the attach's check)
    public = add_source(owner, w.project.id, bucket, name="y", endpoint_url="https://8.8.8.8")
    assert public.status_code == 201, public.content
