"""The gunicorn settings module: what the server process does beyond gunicorn's defaults."""

from __future__ import annotations

import gc
import importlib
import weakref

import pytest

from points_service import gunicorn_conf


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()


def test_a_worker_freezes_its_loaded_objects_out_of_the_collector(unfrozen):
    gc.unfreeze()
    kept = object(), [object()]  # a long-lived container, as the loaded app's objects are
    assert gc.is_tracked(kept)
    assert any(obj is kept for obj in gc.get_objects())

    gunicorn_conf.post_worker_init(worker=None)

    assert gc.get_freeze_count() > 0
    # a full collection no longer walks it
    assert not any(obj is kept for obj in gc.get_objects())


def test_a_request_after_the_freeze_still_has_its_garbage_collected(unfrozen):
    gunicorn_conf.post_worker_init(worker=None)

    class Node:
        pass

    node = Node()
    node.self = node  # a cycle: only the collector can free it
    probe = weakref.ref(node)
    del node

    gc.collect()

    assert probe() is None


@pytest.fixture
def configured(monkeypatch):
    """Load the settings module under an environment; afterwards, load it again as it was."""

    def load(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return importlib.reload(gunicorn_conf)

    yield load
    monkeypatch.undo()
    importlib.reload(gunicorn_conf)


@pytest.mark.parametrize("raw", ["0", "-2", "four"])
def test_web_workers_must_be_a_positive_integer(configured, raw):
    with pytest.raises(ValueError, match="POINTS_WEB_WORKERS must be a positive integer"):
        configured(POINTS_WEB_WORKERS=raw)


def test_workers_and_threads_come_from_the_environment(configured):
    conf = configured(POINTS_WEB_WORKERS="3", POINTS_WEB_THREADS="5")
    assert (conf.workers, conf.threads) == (3, 5)
