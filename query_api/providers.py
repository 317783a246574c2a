"""LLM providers: the primary (RAGBUS_LLM_*) and the fallbacks, each with retries and a circuit breaker.

A provider call is retried with exponential backoff on transient failures only (timeouts, connection errors,
429 and 5xx); a 4xx other than 429 is the request's or the credential's fault and is not retried. A provider
that keeps failing is skipped while its breaker is open. When every provider fails, `ProvidersFailed` is raised
and the service answers extractively with degraded=true.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import openai
from openai import AsyncOpenAI
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from query_api import metrics
from query_api.breaker import CircuitBreaker
from query_api.failover import AllFailed, first_answer
from ragbus.errors import TransientError
from ragbus.settings import LLMProvider, LLMSettings

log = logging.getLogger(__name__)
Messages = list[dict[str, str]]
T = TypeVar("T")


class ProvidersFailed(TransientError):
    """No provider produced an answer."""

    code = "llm_unavailable"


def is_transient(exc: BaseException) -> bool:
    """Timeouts, connection failures, 429 and 5xx are worth retrying; other 4xx are not."""
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError | TimeoutError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, EmptyAnswer)


class EmptyAnswer(Exception):
    """The provider answered with no content."""


class ChatProvider:
    """One OpenAI-compatible endpoint with its breaker."""

    def __init__(self, name: str, endpoint: LLMProvider, settings: LLMSettings) -> None:
        self.name, self.endpoint, self.settings = name, endpoint, settings
        # Retries are ours (tenacity, transient errors only), not the client's.
        self.client = AsyncOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key.get_secret_value(),
            timeout=settings.timeout_s,
            max_retries=0,
        )
        self.breaker = CircuitBreaker(f"llm:{name}", settings.breaker_failures, settings.breaker_cooldown_s)

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.settings.retries + 1),
            wait=wait_exponential(multiplier=self.settings.retry_backoff_s, max=5),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )

    def _request(self, messages: Messages) -> dict[str, Any]:
        return {
            "model": self.endpoint.model,
            "messages": messages,
            "max_tokens": self.settings.max_answer_tokens,
            "temperature": 0,
        }

    async def complete(self, messages: Messages) -> str:
        """The whole answer (retried on transient errors)."""
        started = time.perf_counter()
        try:
            async for attempt in self._retrying():
                with attempt:
                    completion = await self.client.chat.completions.create(**self._request(messages))
                    content = completion.choices[0].message.content if completion.choices else None
                    if not content:
                        raise EmptyAnswer(f"{self.name} returned an empty answer")
                    return content
        finally:
            metrics.LLM_SECONDS.observe(time.perf_counter() - started)
        raise AssertionError("unreachable")  # pragma: no cover - reraise=True re-raises the last error

    async def open_stream(self, messages: Messages) -> AsyncIterator[str]:
        """The answer's deltas; opening the stream is retried, a failure after the first delta is not."""
        async for attempt in self._retrying():
            with attempt:
                stream = await self.client.chat.completions.create(**self._request(messages), stream=True)
                iterator = stream.__aiter__()
                first = await _first_delta(iterator)
                return _deltas(first, iterator)
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.close()


async def _first_delta(iterator: AsyncIterator[Any]) -> str:
    async for chunk in iterator:
        if chunk.choices and chunk.choices[0].delta.content:
            return str(chunk.choices[0].delta.content)
    raise EmptyAnswer("the stream ended before any text")


async def _deltas(first: str, iterator: AsyncIterator[Any]) -> AsyncIterator[str]:
    yield first
    async for chunk in iterator:
        if chunk.choices and chunk.choices[0].delta.content:
            yield str(chunk.choices[0].delta.content)


class ProviderChain:
    """The primary, then each fallback in order, skipping providers whose breaker is open."""

    def __init__(self, settings: LLMSettings) -> None:
        if not settings.base_url:
            raise ValueError("RAGBUS_LLM_BASE_URL is required for a provider chain")
        primary = LLMProvider(base_url=settings.base_url, model=settings.model, api_key=settings.api_key)
        endpoints = [("primary", primary)] + [(f"fallback{n}", p) for n, p in enumerate(settings.fallbacks, 1)]
        self.providers = [ChatProvider(name, endpoint, settings) for name, endpoint in endpoints]

    async def close(self) -> None:
        """Close every provider's client."""
        for provider in self.providers:
            await provider.close()

    async def complete(self, messages: Messages) -> tuple[str, str]:
        """(answer, provider name) from the first provider that answers."""
        answer, provider = await self._first(lambda provider: provider.complete(messages))
        return answer, provider.name

    async def stream(self, messages: Messages) -> tuple[AsyncIterator[str], str]:
        """(deltas, provider name) from the first provider whose stream starts.

        The provider's breaker hears the stream's outcome when it ends: a stream that breaks off is a failure.
        """
        deltas, provider = await self._first(lambda provider: provider.open_stream(messages), close_on_return=False)
        return _reported(deltas, provider.breaker), provider.name

    async def _first(
        self, call: Callable[[ChatProvider], Awaitable[T]], *, close_on_return: bool = True
    ) -> tuple[T, ChatProvider]:
        try:
            return await first_answer(
                self.providers,
                call,
                failures=(Exception,),  # any provider failure moves on to the next provider
                on_failure=_failed,
                close_on_return=close_on_return,
            )
        except AllFailed as exc:
            raise ProvidersFailed(f"every LLM provider failed: {exc}") from None


def _failed(provider: ChatProvider, exc: Exception) -> None:
    metrics.LLM_FAILURES.labels(provider.name).inc()
    log.warning("LLM provider %s failed: %s", provider.name, exc)


async def _reported(deltas: AsyncIterator[str], breaker: CircuitBreaker) -> AsyncIterator[str]:
    try:
        async for piece in deltas:
            yield piece
    except Exception:
        breaker.record_failure()
        raise
    breaker.record_success()
