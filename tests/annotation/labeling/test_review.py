"""The review queue: pseudo labels listed best first, reviewed one by one or in bulk."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotation.labeling.models import Instance
from annotation.labeling.services import instance_create
from tests.factories import box_mask, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    w = make_world()
    img, other = w.assigned_image, w.other_image
    pseudo = []
    for i, (image, source, score) in enumerate(
        [
            (img, "mis", 0.95),
            (img, "mis", 0.80),
            (other, "mis", 0.40),
            (other, "mis", 0.10),
            (img, "exits", 0.90),
            (other, "exits", 0.30),
            (img, "exits", None),
        ]
    ):
        pseudo.append(
            instance_create(
                image=image,
                mask=box_mask(image, i, i, i + 5, i + 4),
                source=source,
                score=score,
                pseudo=True,
            )
        )
    w.pseudo = pseudo  # type: ignore[attr-defined]
    return w


def client_for(w, role: str) -> APIClient:
    client = APIClient()
    client.force_login(w.users[role])
    return client


def test_queue_lists_pseudo_labels_best_score_first(world):
    client = client_for(world, "reviewer")
    body = client.get(f"/api/projects/{world.project.id}/review/").json()
    assert body["count"] == 7  # the two manual masks of the world are not pseudo labels
    scores = [row["score"] for row in body["results"]]
    assert scores == [0.95, 0.90, 0.80, 0.40, 0.30, 0.10, None]
    row = body["results"][0]
    assert row["image"] == world.assigned_image.id and row["source"] == "mis"
    assert row["review_state"] == "pending" and row["bbox"] == [0.0, 0.0, 5.0, 4.0]
    assert row["width"] == world.assigned_image.width and row["mask"]["size"]
    assert set(row) >= {"id", "image", "bbox", "score", "source", "review_state", "version"}
    page = client.get(f"/api/projects/{world.project.id}/review/?limit=2&offset=2").json()
    assert [r["score"] for r in page["results"]] == [0.80, 0.40] and page["count"] == 7


def test_queue_filters(world):
    client = client_for(world, "reviewer")
    url = f"/api/projects/{world.project.id}/review/"

    def scores(query: str) -> list:
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200, response.content
        return [r["score"] for r in response.json()["results"]]

    assert scores("source=exits") == [0.90, 0.30, None]
    assert scores("source=mis&min_score=0.4") == [0.95, 0.80, 0.40]
    assert scores("max_score=0.3") == [0.30, 0.10]
    assert scores("min_score=0.3&max_score=0.85") == [0.80, 0.40, 0.30]
    assert scores(f"dataset={world.dataset.id}&state=pending&source=mis") == [
        0.95,
        0.80,
        0.40,
        0.10,
    ]
    assert scores("state=accepted") == []
    assert scores("dataset=999999") == []
    assert scores("source=manual") == []  # any source narrows the pseudo labels; manual has none
    assert scores("source=opencv-grabcut") == []
    too_long = client.get(f"{url}?source={'x' * 65}")
    assert too_long.status_code == 400 and "source" in too_long.content.decode()
    assert client.get(f"{url}?min_score=high").status_code == 400


def test_queue_page_is_a_few_queries(world):
    client = client_for(world, "reviewer")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/api/projects/{world.project.id}/review/?limit=50").status_code == 200
    # session + user, the role, the count, the page: no query per row
    assert len(queries) <= 6, [q["sql"] for q in queries]


def test_single_review_with_a_stale_version_gets_409(world):
    client = client_for(world, "reviewer")
    inst = world.pseudo[0]
    url = f"/api/instances/{inst.id}/review/"
    ok = client.post(url, {"action": "accept", "version": 1}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["review_state"] == "accepted" and ok.json()["version"] == 2
    stale = client.post(url, {"action": "reject", "version": 1}, format="json")
    assert stale.status_code == 409 and stale.json()["error"]["detail"]["current_version"] == 2
    assert Instance.objects.get(pk=inst.id).review_state == "accepted"
    fix = client.post(url, {"action": "needs_fix", "version": 2}, format="json")
    assert fix.json()["review_state"] == "needs_fix"
    assert client.post(url, {"action": "bless", "version": 3}, format="json").status_code == 400


def test_bulk_accept_by_threshold_changes_only_pending_pseudo_labels_above_it(
    world, django_capture_on_commit_callbacks
):
    client = client_for(world, "reviewer")
    already = world.pseudo[1]  # 0.80, rejected before: a threshold never overrides a decision
    client.post(
        f"/api/instances/{already.id}/review/", {"action": "reject", "version": 1}, format="json"
    )
    url = f"/api/projects/{world.project.id}/review/bulk/"
    with django_capture_on_commit_callbacks() as callbacks:
        body = client.post(
            url, {"action": "accept", "source": "mis", "min_score": 0.4}, format="json"
        ).json()
    assert body == {"changed": 2, "review_state": "accepted"}  # 0.95 and 0.40; exits untouched
    assert len(callbacks) == 1  # one push for the whole batch
    states = {i.score: i.review_state for i in Instance.objects.filter(source="mis")}
    assert states == {0.95: "accepted", 0.80: "rejected", 0.40: "accepted", 0.10: "pending"}
    assert Instance.objects.get(pk=world.pseudo[0].id).version == 2
    assert Instance.objects.get(pk=world.pseudo[4].id).review_state == "pending"  # exits 0.90

    body = client.post(url, {"action": "reject", "max_score": 0.3}, format="json").json()
    assert body["changed"] == 2  # mis 0.10 and exits 0.30; the score-less one is never matched
    assert Instance.objects.get(pk=world.pseudo[6].id).review_state == "pending"
    # Running it again changes nothing.
    assert (
        client.post(url, {"action": "reject", "max_score": 0.3}, format="json").json()["changed"]
        == 0
    )


def test_bulk_by_ids_and_its_refusals(world):
    client = client_for(world, "manager")
    url = f"/api/projects/{world.project.id}/review/bulk/"
    ids = [world.pseudo[2].id, world.pseudo[6].id]
    body = client.post(url, {"action": "needs_fix", "ids": ids}, format="json").json()
    assert body["changed"] == 2
    assert set(Instance.objects.filter(pk__in=ids).values_list("review_state", flat=True)) == {
        "needs_fix"
    }

    from annotation.projects.services import project_create

    foreign = project_create(name="elsewhere", owner=world.users["outsider"])
    bad = client.post(url, {"action": "accept", "ids": [world.pseudo[0].id, 10**9]}, format="json")
    assert bad.status_code == 400 and "not in this project" in bad.json()["error"]["message"]
    assert Instance.objects.get(pk=world.pseudo[0].id).review_state == "pending"  # all or nothing
    everything = client.post(url, {"action": "accept"}, format="json")
    assert everything.status_code == 400
    assert client.post(url, {"action": "accept", "source": "mis"}, format="json").status_code == 400
    assert (
        client.post(
            f"/api/projects/{foreign.id}/review/bulk/",
            {"action": "accept", "ids": ids},
            format="json",
        ).status_code
        == 404
    )


def test_counts_by_source_and_state_in_one_query(world):
    client = client_for(world, "owner")
    client.post(
        f"/api/projects/{world.project.id}/review/bulk/",
        {"action": "accept", "min_score": 0.85},
        format="json",
    )
    url = f"/api/projects/{world.project.id}/review/counts/"
    client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as queries:
        rows = client.get(url).json()
    assert sum("GROUP BY" in q["sql"] for q in queries) == 1
    counts = {(r["source"], r["review_state"]): r["count"] for r in rows}
    assert counts == {
        ("manual", "accepted"): 2,
        ("mis", "accepted"): 1,
        ("mis", "pending"): 3,
        ("exits", "accepted"): 1,
        ("exits", "pending"): 2,
    }
    # how many of each are pseudo labels: the review page offers those sources as filters
    pseudo = {(r["source"], r["review_state"]): r["pseudo"] for r in rows}
    assert pseudo == {**counts, ("manual", "accepted"): 0}


@pytest.mark.parametrize(
    "role, status",
    [
        ("owner", 200),
        ("manager", 200),
        ("reviewer", 200),
        ("annotator", 403),
        ("outsider", 404),
    ],
)
def test_who_may_review(world, role, status):
    client = client_for(world, role)
    pid = world.project.id
    assert client.get(f"/api/projects/{pid}/review/").status_code == status
    assert client.get(f"/api/projects/{pid}/review/counts/").status_code == status
    bulk = client.post(
        f"/api/projects/{pid}/review/bulk/", {"action": "accept", "min_score": 0.99}, format="json"
    )
    assert bulk.status_code == status
    # One by one: the annotator sees this image (their task), so 403; others' images stay 404.
    inst = world.pseudo[0]
    single = client.post(
        f"/api/instances/{inst.id}/review/", {"action": "accept", "version": 1}, format="json"
    )
    assert single.status_code == status
    if role == "annotator":
        hidden = world.pseudo[2]  # on other_image, not in their task
        assert (
            client.post(
                f"/api/instances/{hidden.id}/review/",
                {"action": "accept", "version": 1},
                format="json",
            ).status_code
            == 404
        )
    expected = "accepted" if status == 200 else "pending"
    assert Instance.objects.get(pk=inst.id).review_state == expected


def test_anonymous_gets_nothing(world):
    response = APIClient().get(f"/api/projects/{world.project.id}/review/")
    assert response.status_code in (401, 403)


@pytest.mark.slow
def test_queue_and_counts_stay_fast_with_100k_instances(world):
    import random
    import time

    rng = random.Random(0)
    template = world.pseudo[0]
    images = [world.assigned_image, world.other_image]
    Instance.objects.bulk_create(
        [
            Instance(
                image=images[i % 2],
                mask=template.mask,
                bbox=template.bbox,
                area=template.area,
                source=("mis", "exits", "manual")[i % 3],
                pseudo=i % 3 != 2,
                score=rng.random(),
                review_state=("pending", "pending", "accepted", "rejected")[i % 4],
            )
            for i in range(100_000)
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_instance")
    client = client_for(world, "reviewer")
    pid = world.project.id
    urls = [
        f"/api/projects/{pid}/review/?limit=50",
        f"/api/projects/{pid}/review/?state=pending&source=mis&min_score=0.5&limit=50",
        f"/api/projects/{pid}/review/?state=pending&limit=50&offset=20000",
        f"/api/projects/{pid}/review/counts/",
    ]
    for url in urls:
        client.get(url)  # warm
        start = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - start
        assert response.status_code == 200
        print(f"{elapsed * 1000:.0f} ms  {url}")
        assert elapsed < 0.3, url
    bulk_url = f"/api/projects/{pid}/review/bulk/"
    start = time.perf_counter()
    changed = client.post(
        bulk_url, {"action": "accept", "source": "mis", "min_score": 0.5}, format="json"
    ).json()["changed"]
    print(f"bulk accept of {changed}: {(time.perf_counter() - start) * 1000:.0f} ms")
    assert changed > 5000


def test_the_pseudo_flag_not_the_source_makes_a_pseudo_label(world):
    image = world.assigned_image
    by_hand = instance_create(
        image=image, mask=box_mask(image, 1, 1, 6, 6), source="mis", score=0.99
    )
    assert by_hand.pseudo is False and by_hand.review_state == "accepted"
    client = client_for(world, "reviewer")
    ids = {
        r["id"]
        for r in client.get(f"/api/projects/{world.project.id}/review/?source=mis").json()[
            "results"
        ]
    }
    assert by_hand.id not in ids and world.pseudo[0].id in ids
    assert world.pseudo[0].pseudo is True and world.pseudo[0].review_state == "pending"


@pytest.fixture
def plugin_method():
    """A method registered for one test, as a plugin would register it."""
    from inference import MethodInfo, register_method
    from inference.registry import _BUILDERS

    name = "review-test-plugin"
    register_method(
        MethodInfo(name, "Review test plugin", prompts=("click",)), builder="tests.nowhere:build"
    )
    yield name
    _BUILDERS.pop(name)


def test_a_plugin_methods_pseudo_labels_are_reviewed_like_any(world, plugin_method):
    image = world.other_image
    proposal = instance_create(
        image=image, mask=box_mask(image, 2, 2, 9, 9), source=plugin_method, score=0.5, pseudo=True
    )
    assert proposal.review_state == "pending"
    client = client_for(world, "reviewer")
    url = f"/api/projects/{world.project.id}/review/"
    rows = client.get(f"{url}?source={plugin_method}").json()["results"]
    assert [r["id"] for r in rows] == [proposal.id] and rows[0]["source"] == plugin_method
    assert client.get(url).json()["count"] == 8
    counts = {
        (r["source"], r["review_state"]): (r["count"], r["pseudo"])
        for r in client.get(f"{url}counts/").json()
    }
    assert counts[(plugin_method, "pending")] == (1, 1)
    body = client.post(
        f"{url}bulk/",
        {"action": "accept", "source": plugin_method, "min_score": 0.1},
        format="json",
    ).json()
    assert body["changed"] == 1 and Instance.objects.get(pk=proposal.id).review_state == "accepted"


def test_the_migration_flags_the_old_pseudo_sources(world):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("annotation.labeling.migrations.0008_instance_pseudo")
    Instance.objects.update(pseudo=False)  # as rows were before the flag existed
    migration.flag_pseudo_labels(apps, None)
    flagged = Instance.objects.filter(pseudo=True)
    assert sorted(flagged.values_list("id", flat=True)) == sorted(i.id for i in world.pseudo)
    assert not Instance.objects.filter(source="manual", pseudo=True).exists()
