"""What a Live session's backends say: the Responses stream of a delegation and Decisions answers.

Pure functions over dicts: the nested Responses events as ``response.event`` carries them (lifecycle
snapshots with instructions, tools and output cleared), and ``decision`` objects with token usage.
"""

from __future__ import annotations

import time
from typing import Any

from simulator.audio import text_tokens
from simulator.events import JSON, new_id

#: The delegated backend's deterministic answer, one ``response.output_text.delta`` each.
DELEGATED_ANSWER = ("The", " order", " ships", " tomorrow", " morning.")
#: Tokens the delegated request's prompt costs on top of the task text (instructions, tools).
PROMPT_OVERHEAD_TOKENS = 180
REASONING_TOKENS = 24


def _snapshot(response_id: str, model: str, status: str, usage: JSON | None) -> JSON:
    """A trimmed lifecycle snapshot of the delegated response (no input, output or tools)."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "instructions": None,
        "output": [],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "usage": usage,
    }


def responses_usage(task_text: str, answer: str) -> JSON:
    """Responses ``usage`` with its details, as ``response.completed`` carries it."""
    input_tokens = PROMPT_OVERHEAD_TOKENS + text_tokens(task_text)
    output_tokens = text_tokens(answer) + REASONING_TOKENS
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": REASONING_TOKENS},
        "total_tokens": input_tokens + output_tokens,
    }


def responses_stream(model: str, task_text: str) -> tuple[str, list[JSON]]:
    """The delegated response's id and its streaming events, ``response.created`` to
    ``response.completed`` (which carries the usage), numbered by ``sequence_number``."""
    response_id, item_id = new_id("resp"), new_id("msg")
    answer = "".join(DELEGATED_ANSWER)
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    part: JSON = {"type": "output_text", "text": "", "annotations": []}
    done_part = {**part, "text": answer}
    item: JSON = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress"}
    events: list[JSON] = [
        {
            "type": "response.created",
            "response": _snapshot(response_id, model, "in_progress", None),
        },
        {
            "type": "response.in_progress",
            "response": _snapshot(response_id, model, "in_progress", None),
        },
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
        {"type": "response.content_part.added", **where, "part": part},
        *(
            {"type": "response.output_text.delta", **where, "delta": d, "logprobs": []}
            for d in DELEGATED_ANSWER
        ),
        {"type": "response.output_text.done", **where, "text": answer, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": done_part},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**item, "status": "completed", "content": [done_part]},
        },
        {
            "type": "response.completed",
            "response": _snapshot(
                response_id, model, "completed", responses_usage(task_text, answer)
            ),
        },
    ]
    return response_id, [{**event, "sequence_number": n} for n, event in enumerate(events)]


def _answer(question: JSON) -> JSON:
    """A confident, deterministic answer to one Decisions question (first option, top level)."""
    kind, name = question.get("type"), question.get("name")
    if kind == "choice" and question.get("choices"):
        value = question["choices"][0].get("value", "")
        probabilities = [{"value": value, "probability": 0.9}]
        return {"type": "choice", "choice": value, "confidence": 0.9, "name": name,
                "probabilities": probabilities}  # fmt: skip
    if kind == "predicate":
        return {"type": "predicate", "probability": 0.8, "name": name}
    if kind == "score" and question.get("levels"):
        label = question["levels"][-1].get("label", "")
        probabilities = [
            {"label": label, "value": len(question["levels"]) - 1, "probability": 0.85}
        ]
        return {"type": "score", "score": float(len(question["levels"]) - 1), "confidence": 0.85,
                "name": name, "probabilities": probabilities}  # fmt: skip
    return {"type": "refusal", "name": name}


def decision(model: str, questions: list[Any], context_text: str) -> JSON:
    """A Decisions API result: one answer per question, and token usage."""
    answers = [_answer(q if isinstance(q, dict) else {}) for q in questions]
    input_tokens = 60 + text_tokens(context_text) + 20 * len(questions)
    output_tokens = 4 * len(questions)
    return {
        "model": model,
        "answers": answers,
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }
