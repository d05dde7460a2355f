"""The suite's markers, and the guard that keeps them honest.

- ``slow``: trains a real (tiny) model: seconds to a minute each.
- ``browser``: drives headless Chromium through playwright (every path to Chromium goes through
  ``tests.ui_server.chromium_path``).
- ``cluster``: starts or needs a Ray head (``tests.ray_cluster.start_head``, the ``ray_head`` fixtures).

A test may carry several. The quick loop deselects all three, ``pytest -m "not slow and not browser and not cluster"``,
and needs neither Ray nor Chromium installed. ``cluster`` is added here to every test that uses a head fixture, so
nobody can forget it; ``browser`` is written on the browser test modules. Either way, a test that starts a Ray head or
Chromium without its marker fails at that moment (:func:`require`): an unmarked one cannot slip into the quick loop
and pass only on machines that happen to have Ray or Chromium.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

MARKERS = ("slow", "browser", "cluster")
CLUSTER_FIXTURES = frozenset({"ray_head", "ray_head_process"})

# The test whose setup, call or teardown runs right now (set by tests/conftest.py); None outside pytest, e.g. when a
# benchmark script starts Chromium or a head on its own.
_running: list[pytest.Item | None] = [None]


def mark_by_fixtures(items: Iterable[pytest.Item]) -> None:
    """Add ``cluster`` to every test that uses a Ray head fixture (directly or through another fixture)."""
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


def now_running(item: pytest.Item | None) -> None:
    """Record the test being run, for :func:`require`."""
    _running[0] = item


def require(marker: str, what: str) -> None:
    """Fail the running test unless it carries ``marker``; ``what`` says what it was about to do.

    Raises:
        pytest.fail.Exception: For a test without the marker (outside pytest nothing is checked).
    """
    item = _running[0]
    if item is not None and item.get_closest_marker(marker) is None:
        pytest.fail(
            f"{item.nodeid} {what} but is not marked {marker!r}: add @pytest.mark.{marker} (or pytestmark) so that "
            f'the quick loop (-m "not slow and not browser and not cluster") leaves it out',
            pytrace=False,
        )
