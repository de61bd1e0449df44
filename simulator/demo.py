"""Demo and load driver: the scripted scenarios, once each or N sessions C at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import openai

from simulator.live_scenarios import LIVE_SCENARIOS
from simulator.scenarios import SCENARIOS, ResponseOutcome, Scenario, ScenarioResult

if TYPE_CHECKING:
    from simulator.demo_call import CallResult

__all__ = [
    "DEMO_API_KEY",
    "DEMO_SCENARIOS",
    "DemoError",
    "ResponseOutcome",
    "ScenarioResult",
    "run_demo",
    "run_demo_call",
]

#: Any key works with the simulator; this one is obviously fake in recordings and logs.
DEMO_API_KEY = "sk-demo-0000000000000000"
#: The Realtime sessions, then the GPT-Live ones.
DEMO_SCENARIOS: tuple[Scenario, ...] = SCENARIOS + LIVE_SCENARIOS


class DemoError(RuntimeError):
    """A demo session failed (timed out, lost its socket, got something it did not expect)."""


def websocket_base_url(base_url: str) -> str:
    """``http(s)://host/v1`` -> ``ws(s)://host/v1``; the beta SDK would force ``wss`` otherwise."""
    if base_url.startswith(("http://", "https://")):
        return "ws" + base_url.removeprefix("http")
    return base_url


async def run_demo(
    base_url: str,
    *,
    api_key: str = DEMO_API_KEY,
    sessions: int | None = None,
    concurrency: int = 1,
    progress: Callable[[str], None] | None = None,
    timeout_s: float = 30.0,
    scenarios: tuple[Scenario, ...] = DEMO_SCENARIOS,
) -> list[ScenarioResult]:
    """Drive Realtime and GPT-Live sessions through the official SDK against ``base_url``
    (``…/v1``).

    ``sessions=None`` runs each of ``scenarios`` once; ``sessions=N`` runs N sessions cycling
    through them, at most ``concurrency`` at a time. Results come back in session order;
    ``progress`` gets one line per finished session. Raises :class:`DemoError` when a session fails.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    count = len(scenarios) if sessions is None else sessions
    plan = [scenarios[index % len(scenarios)] for index in range(count)]
    results: list[ScenarioResult | None] = [None] * count
    slots = asyncio.Semaphore(concurrency)
    async with openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url, websocket_base_url=websocket_base_url(base_url)
    ) as client:

        async def one(index: int, scenario: Scenario) -> None:
            async with slots:
                result = await _run_one(client, scenario, index, count, timeout_s)
            results[index] = result
            if progress is not None:
                progress(f"[{index + 1}/{count}] {result.summary()}")

        try:
            async with asyncio.TaskGroup() as group:
                for index, scenario in enumerate(plan):
                    group.create_task(one(index, scenario))
        except ExceptionGroup as failures:
            raise failures.exceptions[0] from None
    return [result for result in results if result is not None]


async def run_demo_call(
    base_url: str, *, api_key: str = DEMO_API_KEY, timeout_s: float = 30.0
) -> CallResult:
    """Place one WebRTC call against ``base_url`` (``…/v1``) with an aiortc peer, watched by the
    application's sideband; raises :class:`DemoError` when it fails."""
    # Imported here: aiortc and PyAV take seconds to import, and only the call needs them.
    from simulator.demo_call import place_call

    async with openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url, websocket_base_url=websocket_base_url(base_url)
    ) as client:
        try:
            return await place_call(client, timeout_s)
        except Exception as exc:
            raise DemoError(f"the demo's WebRTC call failed: {exc!r}") from exc


async def _run_one(
    client: openai.AsyncOpenAI, scenario: Scenario, index: int, count: int, timeout_s: float
) -> ScenarioResult:
    started = time.monotonic()
    try:
        result = await scenario(client, timeout_s)
    except Exception as exc:
        raise DemoError(
            f"demo session {index + 1}/{count} ({scenario.__name__}) failed: {exc!r}"
        ) from exc
    result.seconds = time.monotonic() - started
    return result
