"""Session config of one simulated connection: defaults, ``session.update`` merging, views."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, cast

from simulator import events
from simulator.audio import BETA_FORMATS, FORMAT_FROM_GA_TYPE, AudioFormat
from simulator.events import JSON
from simulator.params import (
    ClientError,
    as_object,
    check_modalities,
    invalid_type,
    invalid_value,
    normalize_ga_format,
)

GA_REALTIME_KEYS = frozenset(
    {
        "type",
        "model",
        "output_modalities",
        "instructions",
        "audio",
        "include",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "tracing",
        "truncation",
        "prompt",
        "reasoning",
        "parallel_tool_calls",
    }
)
GA_TRANSCRIPTION_KEYS = frozenset({"type", "audio", "include"})
GA_AUDIO_INPUT_KEYS = frozenset({"format", "transcription", "noise_reduction", "turn_detection"})
GA_AUDIO_OUTPUT_KEYS = frozenset({"format", "voice", "speed"})
BETA_REALTIME_KEYS = frozenset(
    {
        "client_secret",
        "input_audio_format",
        "input_audio_noise_reduction",
        "input_audio_transcription",
        "instructions",
        "max_response_output_tokens",
        "modalities",
        "model",
        "output_audio_format",
        "speed",
        "temperature",
        "tool_choice",
        "tools",
        "tracing",
        "turn_detection",
        "voice",
    }
)
BETA_TRANSCRIPTION_KEYS = frozenset(
    {
        "client_secret",
        "include",
        "input_audio_format",
        "input_audio_noise_reduction",
        "input_audio_transcription",
        "modalities",
        "turn_detection",
    }
)
LOGPROBS_INCLUDE = "item.input_audio_transcription.logprobs"


def _unknown(param: str) -> ClientError:
    return ClientError("unknown_parameter", f"Unknown parameter: '{param}'.", param)


def _normalize_transcription(value: Any, param: str) -> JSON | None:
    if value is None:
        return None
    given = as_object(value, param)
    model = given.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid_type(f"{param}.model", "a string", model)
    return {"model": model or "whisper-1", "language": None, "prompt": None, **given}


def _normalize_turn_detection(
    value: Any, param: str, *, beta: bool, transcription_session: bool
) -> JSON | None:
    if value is None:
        return None
    given = as_object(value, param)
    kind = given.get("type", "server_vad")
    if kind == "server_vad":
        if beta and not transcription_session:
            defaults = events.beta_server_vad_defaults()
        else:
            defaults = events.server_vad_defaults(transcription_session=transcription_session)
    elif kind == "semantic_vad":
        defaults = events.semantic_vad_defaults()
    else:
        raise invalid_value(f"{param}.type", kind, ["server_vad", "semantic_vad"])
    merged = {**defaults, **given}
    _check_vad_numbers(merged, param)
    return merged


def _check_vad_numbers(turn_detection: JSON, param: str) -> None:
    """``threshold`` is a number in 0..1; the ``*_ms`` settings are integers >= 0."""
    threshold = turn_detection.get("threshold")
    if threshold is not None:
        if not isinstance(threshold, int | float) or isinstance(threshold, bool):
            raise invalid_type(f"{param}.threshold", "a number", threshold)
        if not 0 <= threshold <= 1:
            bound = (
                ("decimal_below_min_value", "below minimum value. Expected a value >= 0")
                if threshold < 0
                else ("decimal_above_max_value", "above maximum value. Expected a value <= 1")
            )
            raise ClientError(
                bound[0],
                f"Invalid '{param}.threshold': decimal {bound[1]}, but got {threshold} instead.",
                f"{param}.threshold",
            )
    for key in ("prefix_padding_ms", "silence_duration_ms"):
        value = turn_detection.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid_type(f"{param}.{key}", "an integer", value)
        if value < 0:
            raise ClientError(
                "integer_below_min_value",
                f"Invalid '{param}.{key}': integer below minimum value. Expected a value >= 0, "
                f"but got {value} instead.",
                f"{param}.{key}",
            )


@dataclass
class SessionConfig:
    """The live session object (exactly what ``session.updated`` echoes) plus typed views."""

    beta: bool
    transcription: bool
    data: JSON

    @classmethod
    def create(
        cls, *, beta: bool, transcription: bool, model: str, session_id: str, now: float
    ) -> SessionConfig:
        if beta:
            expires = int(now) + events.BETA_SESSION_TTL_S
            data = (
                events.beta_transcription_session(session_id, expires)
                if transcription
                else events.beta_realtime_session(session_id, model, expires)
            )
        else:
            expires = int(now) + events.GA_SESSION_TTL_S
            data = (
                events.ga_transcription_session(session_id, expires)
                if transcription
                else events.ga_realtime_session(session_id, model, expires)
            )
        return cls(beta=beta, transcription=transcription, data=data)

    # ----------------------------------------------------------------- views
    @property
    def _audio_input(self) -> JSON:
        return cast(JSON, self.data["audio"]["input"])

    @property
    def input_format(self) -> AudioFormat:
        if self.beta:
            return cast(AudioFormat, self.data["input_audio_format"])
        return FORMAT_FROM_GA_TYPE[self._audio_input["format"]["type"]]

    @property
    def output_format(self) -> AudioFormat:
        if self.beta:
            return cast(AudioFormat, self.data.get("output_audio_format", "pcm16"))
        return FORMAT_FROM_GA_TYPE[self.data["audio"]["output"]["format"]["type"]]

    @property
    def turn_detection(self) -> JSON | None:
        td = self.data["turn_detection"] if self.beta else self._audio_input["turn_detection"]
        return cast(JSON | None, td)

    @property
    def vad_enabled(self) -> bool:
        return self.turn_detection is not None

    @property
    def create_response(self) -> bool:
        td = self.turn_detection
        if td is None or self.transcription:
            return False
        return bool(td.get("create_response", True))

    @property
    def interrupt_response(self) -> bool:
        td = self.turn_detection
        return td is not None and bool(td.get("interrupt_response", True))

    @property
    def transcription_model(self) -> str | None:
        cfg = (
            self.data["input_audio_transcription"]
            if self.beta
            else self._audio_input["transcription"]
        )
        if not cfg:
            return None
        return str(cfg.get("model") or "whisper-1")

    @property
    def include_logprobs(self) -> bool:
        include = self.data.get("include")
        return isinstance(include, list) and LOGPROBS_INCLUDE in include

    @property
    def modalities(self) -> list[str]:
        key = "modalities" if self.beta else "output_modalities"
        return list(self.data.get(key) or ["audio"])

    @property
    def voice(self) -> Any:
        return self.data["voice"] if self.beta else self.data["audio"]["output"]["voice"]

    @property
    def instructions(self) -> str:
        value = self.data.get("instructions")
        return value if isinstance(value, str) else ""

    @property
    def max_output_tokens(self) -> int | str:
        key = "max_response_output_tokens" if self.beta else "max_output_tokens"
        value = self.data.get(key, "inf")
        return value if isinstance(value, int | str) else "inf"

    @property
    def temperature(self) -> float:
        value = self.data.get("temperature", 0.8)
        return float(value) if isinstance(value, int | float) else 0.8

    # ----------------------------------------------------------------- updates
    def apply_update(self, patch: Any, *, voice_locked: bool) -> None:
        """Merge a ``session.update``'s ``session``; atomic (raises :class:`ClientError`)."""
        if patch is None:
            raise ClientError(
                "missing_required_parameter", "Missing required parameter: 'session'.", "session"
            )
        given = as_object(patch, "session")
        new = copy.deepcopy(self.data)
        if self.beta:
            self._merge_beta(new, given, voice_locked=voice_locked)
        else:
            self._merge_ga(new, given, voice_locked=voice_locked)
        self.data = new

    def _merge_ga(self, new: JSON, given: JSON, *, voice_locked: bool) -> None:
        kind = given.get("type")
        if kind is None:
            raise ClientError(
                "missing_required_parameter",
                "Missing required parameter: 'session.type'.",
                "session.type",
            )
        current = "transcription" if self.transcription else "realtime"
        if kind not in ("realtime", "transcription"):
            raise invalid_value("session.type", kind, ["realtime", "transcription"])
        if kind != current:
            raise ClientError(
                "invalid_value",
                f"Cannot update a session of type '{current}' to type '{kind}'.",
                "session.type",
            )
        allowed = GA_TRANSCRIPTION_KEYS if self.transcription else GA_REALTIME_KEYS
        for key in given:
            if key not in allowed:
                raise _unknown(f"session.{key}")
        for key, value in given.items():
            if key == "type":
                continue
            if key == "audio":
                self._merge_ga_audio(new, as_object(value, "session.audio"), voice_locked)
            elif key == "output_modalities":
                new[key] = check_modalities(value, "session.output_modalities")
            else:
                new[key] = value

    def _merge_ga_audio(self, new: JSON, audio: JSON, voice_locked: bool) -> None:
        for key in audio:
            if key not in ("input", "output") or (key == "output" and self.transcription):
                raise _unknown(f"session.audio.{key}")
        if "input" in audio:
            inp = as_object(audio["input"], "session.audio.input")
            target = new["audio"]["input"]
            for key, value in inp.items():
                param = f"session.audio.input.{key}"
                if key not in GA_AUDIO_INPUT_KEYS:
                    raise _unknown(param)
                if key == "format":
                    target[key] = normalize_ga_format(value, param)
                elif key == "transcription":
                    target[key] = _normalize_transcription(value, param)
                elif key == "turn_detection":
                    target[key] = _normalize_turn_detection(
                        value, param, beta=False, transcription_session=self.transcription
                    )
                else:
                    target[key] = value
        if "output" in audio:
            out = as_object(audio["output"], "session.audio.output")
            target = new["audio"]["output"]
            for key, value in out.items():
                param = f"session.audio.output.{key}"
                if key not in GA_AUDIO_OUTPUT_KEYS:
                    raise _unknown(param)
                if key == "format":
                    target[key] = normalize_ga_format(value, param)
                elif key == "voice":
                    if voice_locked and value != target.get("voice"):
                        raise _voice_locked(param)
                    target[key] = value
                else:
                    target[key] = value

    def _merge_beta(self, new: JSON, given: JSON, *, voice_locked: bool) -> None:
        allowed = BETA_TRANSCRIPTION_KEYS if self.transcription else BETA_REALTIME_KEYS
        for key in given:
            if key not in allowed:
                raise _unknown(f"session.{key}")
        for key, value in given.items():
            param = f"session.{key}"
            if key == "client_secret":
                continue
            if key in ("input_audio_format", "output_audio_format"):
                if value not in BETA_FORMATS:
                    raise invalid_value(param, value, list(BETA_FORMATS))
                new[key] = value
            elif key == "input_audio_transcription":
                new[key] = _normalize_transcription(value, param)
            elif key == "turn_detection":
                new[key] = _normalize_turn_detection(
                    value, param, beta=True, transcription_session=self.transcription
                )
            elif key == "modalities":
                mods = check_modalities(value, param)
                new[key] = [m for m in ("audio", "text") if m in mods]
            elif key == "voice":
                if voice_locked and value != new.get("voice"):
                    raise _voice_locked(param)
                new[key] = value
            elif key == "temperature":
                if not isinstance(value, int | float) or not 0.6 <= value <= 1.2:
                    raise ClientError(
                        "decimal_below_min_value"
                        if isinstance(value, int | float) and value < 0.6
                        else "invalid_value",
                        f"Invalid 'session.temperature': expected a number between 0.6 and 1.2, "
                        f"but got {value!r} instead.",
                        param,
                    )
                new[key] = value
            else:
                new[key] = value


def _voice_locked(param: str) -> ClientError:
    return ClientError(
        "cannot_update_voice",
        "Cannot update a conversation's voice if assistant audio is present.",
        param,
    )
