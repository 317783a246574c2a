"""The embedded stack's local generative model: `ragbus up`'s code verifies the GGUF, starts llama-cpp-python's
OpenAI-protocol server, and the query API answers through it from the indexed passages.

Each model the stack can serve: Gemma 3 270M (base) and SmolLM2-135M-Instruct. Needs `pip install 'ragbus[llm]'`
(llama-cpp-python built from source, and the models' packages; `make test` installs it); skipped otherwise.
Marked `llm_local`: select or leave out with `-m llm_local` / `-m "not llm_local"`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from query_api.app import create_app
from query_api.generation import SYSTEM_PROMPT
from ragbus import local_llm
from ragbus.settings import LLMSettings, StackSettings, load_settings
from ragbus.stack.launcher import EmbeddedStack
from ragbus.stack.servers import llama_server_missing
from schemas.documents import DocumentEvent
from tests.stack_fixtures import Pipeline, environment

pytestmark = [pytest.mark.integration, pytest.mark.one_engine, pytest.mark.llm_local]


# What each model's server log says it loaded (the GGUF's general.name), so the test knows the verified file is the one
# served.
LOADED_AS = {"gemma3-270m": "Gemma 3 270m", "smollm2-135m": "Smollm2 135M"}


def _require_local_llm(model: local_llm.GGUFModel) -> None:
    missing = llama_server_missing()
    if missing:
        pytest.skip(f"llama-cpp-python's server is not installed ({', '.join(missing)}): pip install 'ragbus[llm]'")
    try:
        local_llm.installed_parts(model)
    except local_llm.ModelUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module", params=sorted(local_llm.MODELS))
def model(request: pytest.FixtureRequest) -> local_llm.GGUFModel:
    """Each local model the stack can serve (RAGBUS_STACK_LLM)."""
    chosen: local_llm.GGUFModel = local_llm.MODELS[request.param]
    return chosen


@pytest.fixture(scope="module")
def local_llm_env(pipeline: Pipeline, stack_home: Path, model: local_llm.GGUFModel) -> Iterator[dict[str, str]]:
    """The LLM server as `ragbus up` starts it for RAGBUS_STACK_LLM=<model>; the API's LLM settings."""
    _require_local_llm(model)
    settings = dataclasses.replace(
        pipeline.settings,
        stack=StackSettings(home=stack_home / f"local-llm-{model.name}", llm=model.name),
        llm=LLMSettings(base_url=None),  # whatever the environment says: the stack's own model
    )
    stack = EmbeddedStack(settings, api=False)
    try:
        yield stack.start_llm()
    finally:
        stack.stop()


def test_the_stack_serves_a_verified_local_model_and_the_api_answers_through_it(
    pipeline: Pipeline,
    indexed_corpus: list[DocumentEvent],
    model: local_llm.GGUFModel,
    local_llm_env: dict[str, str],
    stack_home: Path,
) -> None:
    home = stack_home / f"local-llm-{model.name}"
    assert local_llm_env["RAGBUS_LLM_MODEL"] == model.name
    assert (home / "models" / model.filename).exists()
    # The cache off: the answer comes from the model, not from an earlier extractive answer to the same question.
    with environment({**pipeline.env, **local_llm_env, "RAGBUS_REDIS_QUERY_CACHE_TTL_S": "0"}):
        settings = load_settings()
    with TestClient(create_app(settings)) as api:
        response = api.post("/v1/query", json={"query": "What does the koala eat?", "top_k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] is False, body  # written by the model, not the extractive fallback
    assert body["answer"].strip(), body
    # Prompted in the model's own turn format: without the stack's chat template, llama-cpp-python would fall back
    # to Llama 2's.
    log = (home / "logs" / "llm.log").read_text()
    assert "Using fallback chat format" not in log
    assert LOADED_AS[model.name] in log  # the verified GGUF is what the server loaded
    if model is local_llm.SMOLLM2_135M:
        # The instruction-tuned model answers from the passages rather than repeating the prompt.
        assert "eucalyptus" in body["answer"].lower(), body
        assert SYSTEM_PROMPT[:60] not in body["answer"], body
    # What Gemma's answer says is not asserted: that GGUF is the base (pretrained) model, which repeats the prompt
    # instead of following it (bench/answers_llm.py, docs/benchmarks.md).
