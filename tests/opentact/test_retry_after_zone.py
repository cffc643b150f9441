"""Retry-After dates that name no zone: HTTP dates are always UTC (RFC 9110)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from pipelines.dates import Window
from pipelines.opentact.client import ClientConfig, OpentactClient
from tests.opentact.factories import T0, cdr
from tests.opentact.fakes import API_KEY, BASE_URL, FakeApi, FakeTime, error, times

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("when", ["Sun, 01 Nov 2026 00:00:12 -0000", "Sun, 01 Nov 2026 00:00:12"])
async def test_429_retry_after_as_a_date_without_a_zone_is_read_as_utc(when: str) -> None:
    fake = FakeApi({"cdrs": [cdr(i, at=T0 + i * timedelta(hours=1)) for i in range(3)]})
    fake.faults.append(times(1, lambda r: error(429, headers={"Retry-After": when})))
    clock = FakeTime()
    config = ClientConfig(base_url=BASE_URL, api_key=SecretStr(API_KEY), page_size=5)
    client = OpentactClient(
        config, transport=fake.transport(), timer=clock.timer, sleep=clock.sleep, rng=random.Random(7),
        clock=lambda: NOW,
    )
    async with client:
        pages = [page async for page in client.read_window("cdrs", Window(T0, T0 + timedelta(days=1)))]
    assert sum(page.frame.height for page in pages) == 3
    assert clock.sleeps == [12.0]
