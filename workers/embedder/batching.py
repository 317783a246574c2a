"""Model calls planned by token length, so that padding costs as little as the number of calls allows."""

from __future__ import annotations

from collections.abc import Sequence

# What one model call costs beyond its tokens, counted in tokens. Measured on 2 cores with all-MiniLM-L6-v2 on one
# thread: a call of one short text takes about 22 ms, the time of 50 to 70 tokens of a long batch. 256 is on the
# side of fewer, larger calls, which also keep several model threads busy (docs/benchmarks.md).
CALL_COST_TOKENS = 256


def plan_model_batches(
    lengths: Sequence[int], max_batch: int, call_cost_tokens: int = CALL_COST_TOKENS
) -> list[list[int]]:
    """Indices of `lengths` (tokens per input) grouped into model calls of at most `max_batch` inputs each.

    A call pads every input to its longest, so a call costs `call_cost_tokens + size * longest`. Fixed groups of
    `max_batch` over one consumer batch pad a lot where a few long chunks meet many short ones: on a SciFact share
    the embedder's former groups (sorted by characters) padded 18.2% over the tokens needed, these 3.7%
    (bench/results/model-batches.json). Longest first, the cheapest split into consecutive groups is
    found exactly by dynamic programming, in O(len(lengths) * max_batch). Groups come longest first.
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, not {max_batch}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    longest = [lengths[i] for i in order]
    n = len(order)
    # cost[j]: the cheapest plan of the first j inputs; cut[j]: where that plan's last group starts.
    cost, cut = [0] * (n + 1), [0] * (n + 1)
    for end in range(1, n + 1):
        cost[end], cut[end] = min(
            (cost[start] + call_cost_tokens + (end - start) * longest[start], start)
            for start in range(max(0, end - max_batch), end)
        )
    groups: list[list[int]] = []
    end = n
    while end > 0:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]
