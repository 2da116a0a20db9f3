"""Request bodies are refused before the server reads them: by Content-Length, by missing
credentials, and while a chunked body streams in. Against a real uvicorn on the test
database, with raw sockets, so that "before the body is read" is what the test observes: the
answer comes while the body has not been sent (or only its start)."""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
import urllib.request

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.conftest import _wait_for_other_sessions_to_end, uvicorn_server
from tests.factories import make_world

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

MODEL_CAP = 2 * 2**20 + 2**20  # MASKWRIGHT_MAX_MODEL_MB=2, plus the multipart allowance
REQUEST_CAP = 1 * 2**20  # MASKWRIGHT_MAX_REQUEST_MB=1
UPLOAD_CAP = 2048 * 2**20 + 2**20  # MASKWRIGHT_MAX_UPLOAD_MB=2048, plus the multipart allowance


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    """uvicorn with small body limits; yields its (host, port)."""
    try:
        with uvicorn_server(
            tmp_path_factory.mktemp("uvicorn"),
            MASKWRIGHT_MAX_MODEL_MB="2",
            MASKWRIGHT_MAX_REQUEST_MB="1",
            MASKWRIGHT_MAX_UPLOAD_MB="2048",
        ) as (url, _):
            host, port = url.removeprefix("http://").split(":")
            yield (host, int(port))
    finally:
        with django_db_blocker.unblock():
            _wait_for_other_sessions_to_end()


def _headers_only(
    server, path: str, length: int, **headers: str
) -> tuple[http.client.HTTPResponse, float]:
    """POST the headers of a ``length``-byte body and none of the body; the answer and how
    long it took. A server that waits for the body would time out here."""
    conn = http.client.HTTPConnection(*server, timeout=5)
    conn.putrequest("POST", path)
    conn.putheader("Content-Length", str(length))
    conn.putheader("Content-Type", "multipart/form-data; boundary=xyz")
    for name, value in headers.items():
        conn.putheader(name.replace("_", "-"), value)
    started = time.monotonic()
    conn.endheaders()
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]  (read here: the time includes it)
    return response, time.monotonic() - started


def _owner_token_and_project() -> tuple[str, int]:
    w = make_world()
    return Token.objects.create(user=w.users["owner"]).key, w.project.id


def test_anonymous_bodies_to_the_api_are_refused_before_they_are_read(server):
    _, project_id = _owner_token_and_project()
    # 4 GiB declared, nothing sent: refused at once, by size (the test server's cap is 3 MiB)
    response, took = _headers_only(server, f"/api/projects/{project_id}/models/", 4 * 2**30)
    assert response.status == 413 and took < 3, (response.status, took)
    # a size the URL takes, but nobody signed in: refused at once too, as DRF would
    response, took = _headers_only(server, f"/api/projects/{project_id}/models/", 100_000)
    assert response.status == 403 and took < 3
    assert response.getheader("Connection") == "close"
    # a bad token: DRF's 401
    response, _ = _headers_only(
        server, f"/api/projects/{project_id}/models/", 100_000, Authorization="Token nope"
    )
    assert response.status == 401 and response.getheader("WWW-Authenticate") == "Token"
    # a bad session cookie
    response, _ = _headers_only(
        server, f"/api/projects/{project_id}/models/", 100_000, Cookie="sessionid=forged"
    )
    assert response.status == 403


def test_oversized_bodies_of_signed_in_users_are_refused_by_length(server):
    token, project_id = _owner_token_and_project()
    response, took = _headers_only(
        server, f"/api/projects/{project_id}/models/", 4 * 2**30, Authorization=f"Token {token}"
    )
    assert response.status == 413 and took < 3
    # every other URL has the small cap, the sign-in page included
    response, took = _headers_only(
        server, "/api/projects/", REQUEST_CAP + 1, Authorization=f"Token {token}"
    )
    assert response.status == 413 and took < 3
    response, took = _headers_only(server, "/login/", REQUEST_CAP + 1)
    assert response.status == 413 and took < 3


def _error_of(raw: bytes) -> tuple[int, dict]:
    import json

    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body or b"{}")


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    """No Content-Length: the bytes are counted as they come, and the answer arrives while
    the client is still sending, long before the 64 MiB it meant to send."""
    token, project_id = _owner_token_and_project()
    sock = socket.create_connection(server, timeout=10)
    sock.sendall(
        f"POST /api/projects/{project_id}/models/ HTTP/1.1\r\nHost: {server[0]}\r\n"
        f"Authorization: Token {token}\r\nContent-Type: multipart/form-data; boundary=xyz\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b"x" * 65536
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent, answer = 0, b""
    while sent < 64 * 2**20:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        try:
            sock.sendall(framed)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    sock.settimeout(10)
    try:
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    status, body = _error_of(answer)
    assert status == 413 and body["error"]["code"] == "too_large", answer[:300]
    assert body["error"]["detail"]["limit"] == MODEL_CAP
    assert sent < MODEL_CAP + 16 * 2**20, sent  # what the socket buffers held, not 64 MiB


def test_ordinary_requests_still_pass(server):
    token, project_id = _owner_token_and_project()
    base = f"http://{server[0]}:{server[1]}"
    # signing in needs no credentials
    request = urllib.request.Request(
        f"{base}/api/auth/token/",
        data=b'{"username": "owner", "password": "pw-12345678"}',
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    # a token
    request = urllib.request.Request(
        f"{base}/api/projects/",
        data=b'{"name": "P2"}',
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
    # a session cookie (the browser app); CSRF is Django's business after this layer
    client = Client()
    assert client.login(username="owner", password="pw-12345678")
    conn = http.client.HTTPConnection(*server, timeout=10)
    conn.request(
        "POST",
        "/api/projects/",
        body=b'{"name": "P3"}',
        headers={
            "Content-Type": "application/json",
            "Cookie": f"sessionid={client.cookies['sessionid'].value}",
        },
    )
    response = conn.getresponse()
    # reached Django: the CSRF check answered
    assert response.status == 403 and b"CSRF" in response.read()
    # a model upload under the limit goes through to the view
    conn = http.client.HTTPConnection(*server, timeout=10)
    boundary = "xyz"
    parts = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="method"\r\n\r\ndynamite\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="m.pth"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + b"0" * 2**20
        + f"\r\n--{boundary}--\r\n".encode()
    )
    conn.request(
        "POST",
        f"/api/projects/{project_id}/models/",
        body=parts,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Authorization": f"Token {token}",
        },
    )
    response = conn.getresponse()
    assert response.status not in (401, 403, 413), (response.status, response.read()[:300])


def _tokens_of(w, *names: str) -> dict[str, str]:
    return {name: Token.objects.create(user=w.users[name]).key for name in names}


def test_uploads_are_refused_by_role_before_the_body_is_read(server):
    """1.5 GB declared, a size the URL takes, nothing sent: who may not upload there is
    answered at once, with the view's own status and message, not after the body is spooled."""
    from annotation.projects.services import project_create

    w = make_world()
    project_create(name="Another tenant", owner=w.users["outsider"])  # an owner, elsewhere
    tokens = _tokens_of(w, "owner", "annotator", "reviewer", "outsider")
    huge = 1500 * 10**6
    dataset_upload = f"/api/datasets/{w.dataset.id}/upload/"
    model_upload = f"/api/projects/{w.project.id}/models/"
    cases = [  # the model uploads declare 2 MB: the test server's model cap is 3 MiB
        (
            dataset_upload,
            "annotator",
            403,
            "forbidden",
            "an annotator cannot upload images in this project",
        ),
        (
            dataset_upload,
            "reviewer",
            403,
            "forbidden",
            "a reviewer cannot upload images in this project",
        ),
        (dataset_upload, "outsider", 404, "not_found", f"dataset {w.dataset.id} not found"),
        ("/api/datasets/999999/upload/", "owner", 404, "not_found", "dataset 999999 not found"),
        (
            model_upload,
            "annotator",
            403,
            "forbidden",
            "an annotator cannot upload models in this project",
        ),
        (model_upload, "outsider", 404, "not_found", f"project {w.project.id} not found"),
    ]
    for path, who, status, code, message in cases:
        length = 2 * 10**6 if path == model_upload else huge
        response, took = _headers_only(server, path, length, Authorization=f"Token {tokens[who]}")
        body = json.loads(response.body)
        assert (response.status, took < 3) == (status, True), (path, who, response.status, took)
        assert body == {"error": {"code": code, "message": message, "detail": {}}}, (
            path,
            who,
            body,
        )
        assert response.getheader("Connection") == "close"
    # a session cookie names its user as well as a token does
    client = Client()
    assert client.login(username="annotator", password="pw-12345678")
    response, took = _headers_only(
        server, dataset_upload, huge, Cookie=f"sessionid={client.cookies['sessionid'].value}"
    )
    assert response.status == 403 and took < 3


def test_an_admin_upload_passes_below_the_cap_and_is_refused_above_it(server):
    from annotation.datasets.models import Image
    from tests.factories import make_image_bytes

    w = make_world()
    token = _tokens_of(w, "manager")["manager"]
    path = f"/api/datasets/{w.dataset.id}/upload/"
    response, took = _headers_only(server, path, UPLOAD_CAP + 1, Authorization=f"Token {token}")
    assert response.status == 413 and took < 3
    # 1.5 GB declared: let through to Django, which waits for the body (no answer yet)
    sock = socket.create_connection(server, timeout=10)
    try:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {server[0]}\r\nAuthorization: Token {token}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {1500 * 10**6}\r\n\r\n".encode()
        )
        readable, _, _ = select.select([sock], [], [], 1.5)
        assert not readable, sock.recv(300)
    finally:
        sock.close()
    # and an ordinary upload goes in
    before = Image.objects.filter(dataset=w.dataset).count()
    boundary = "xyz"
    parts = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="new.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + make_image_bytes(seed=99)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    conn = http.client.HTTPConnection(*server, timeout=30)
    conn.request(
        "POST",
        path,
        body=parts,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Authorization": f"Token {token}",
        },
    )
    response = conn.getresponse()
    report = json.loads(response.read())
    assert response.status == 200 and report["accepted"] == 1, report
    assert Image.objects.filter(dataset=w.dataset).count() == before + 1
