"""The [ssf] settings are checked, and a deliverer's thread never outlives it."""

from __future__ import annotations

import gc

from accessd.config import SsfSettings, load_settings
from accessd.ssf.delivery import Deliverer


def test_ssf_settings_come_from_the_environment_and_are_checked():
    settings = load_settings(env={"ACCESSD_SSF_MAX_ATTEMPTS": "3", "ACCESSD_SSF_RETRY_FIRST_SECONDS": "0"})
    assert settings.ssf.max_attempts == 3
    assert "ssf.retry_first_seconds: must be positive" in settings.validate()


def test_a_deliverer_dropped_without_close_ends_its_thread(db):
    deliverer = Deliverer(db, SsfSettings(outbox_poll_seconds=0.05))
    deliverer.start()
    thread = deliverer._thread
    assert thread.is_alive()
    del deliverer  # an app a test threw away: its thread must not poll that database forever
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


def test_close_stops_the_thread_and_a_closed_deliverer_stays_stopped(db):
    deliverer = Deliverer(db, SsfSettings(outbox_poll_seconds=0.05))
    deliverer.wake()
    thread = deliverer._thread
    deliverer.close()
    deliverer.wake()  # a commit after shutdown starts nothing
    assert not thread.is_alive() and deliverer._thread is thread and not deliverer.running
