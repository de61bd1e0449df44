"""Prices: the cost formula of docs/prices.md, snapshot fallback, estimates and pricing files."""

from __future__ import annotations

from pathlib import Path

import pytest

import protocol
from protocol.pricing import (
    BUILTIN_PRICES,
    Price,
    PriceTable,
    PricingError,
    load_pricing,
    price_table,
    response_cost,
    seconds_cost,
    transcription_cost,
)

GA_USAGE = {  # a real GA usage (docs/realtime-api.md#responsedone-usage)
    "total_tokens": 320,
    "input_tokens": 132,
    "output_tokens": 188,
    "input_token_details": {
        "text_tokens": 59,
        "audio_tokens": 73,
        "image_tokens": 0,
        "cached_tokens": 64,
        "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 64, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 41, "audio_tokens": 147},
}


def test_cost_formula_on_the_reference_usage():
    price = PriceTable(BUILTIN_PRICES).lookup("gpt-realtime")
    cost, estimated = response_cost(price, protocol.response_usage(GA_USAGE))
    # text in 59 × 4 + audio uncached 9 × 32 + audio cached 64 × 0.40 + out 41 × 16 + 147 × 64
    expected = (59 * 4.00 + 9 * 32.00 + 64 * 0.40 + 41 * 16.00 + 147 * 64.00) / 1e6
    assert cost == pytest.approx(expected)
    assert estimated is False


def test_dated_snapshot_takes_the_base_price_unless_it_has_its_own():
    table = PriceTable(BUILTIN_PRICES)
    assert table.lookup("gpt-realtime-2025-08-28") == table.lookup("gpt-realtime")
    assert table.lookup("gpt-4o-realtime-preview-2024-10-01") != table.lookup(
        "gpt-4o-realtime-preview"
    )


def test_unknown_model_costs_null_never_a_guess():
    table = PriceTable(BUILTIN_PRICES)
    assert table.lookup("some-other-model") is None
    assert response_cost(None, protocol.response_usage(GA_USAGE)) == (None, False)


def test_cached_without_details_is_priced_as_text_and_marked_estimated():
    usage = {
        "total_tokens": 150,
        "input_tokens": 100,
        "output_tokens": 50,
        "input_token_details": {"text_tokens": 60, "audio_tokens": 40, "cached_tokens": 30},
        "output_token_details": {"text_tokens": 50, "audio_tokens": 0},
    }
    price = Price(1.0, 0.5, 2.0, 10.0, 0.1, 20.0)
    cost, estimated = response_cost(price, protocol.response_usage(usage))
    assert estimated is True
    assert cost == pytest.approx((30 * 1.0 + 30 * 0.5 + 40 * 10.0 + 50 * 2.0) / 1e6)


def test_tokens_without_a_price_give_null():
    usage = protocol.response_usage(
        {"input_tokens": 5, "input_token_details": {"image_tokens": 5}, "output_tokens": 0}
    )
    assert response_cost(BUILTIN_PRICES["gpt-4o-realtime-preview"], usage)[0] is None


def test_transcription_costs_by_duration_and_by_tokens():
    whisper = transcription_cost(
        BUILTIN_PRICES["whisper-1"], {"usage_type": "duration", "seconds": 90.0}
    )
    assert whisper == pytest.approx(1.5 * 0.006)
    tokens = {
        "usage_type": "tokens",
        "input_tokens": 29,
        "output_tokens": 8,
        "input_audio_tokens": 29,
        "input_text_tokens": 0,
    }
    mini = transcription_cost(BUILTIN_PRICES["gpt-4o-mini-transcribe"], tokens)
    assert mini == pytest.approx((29 * 1.25 + 8 * 5.00) / 1e6)


def test_pricing_file_overrides_and_adds(tmp_path: Path):
    path = tmp_path / "prices.toml"
    path.write_text(
        '[models."gpt-realtime"]\ntext_input = 1.5\n\n[models."my-model"]\naudio_output = 9\n'
    )
    table = price_table(str(path))
    assert table.lookup("gpt-realtime") == Price(text_input=1.5)
    assert table.lookup("my-model") == Price(audio_output=9.0)
    assert table.lookup("whisper-1") == BUILTIN_PRICES["whisper-1"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[models."m"]\ntext_input = = 1\n', "line 2"),
        ('[models."m"]\ntext_input = 1\ntext_inptu = 2\n', ":3: unknown price 'text_inptu'"),
        ('[models."m"]\n\naudio_output = -1\n', ":3: price 'audio_output' of 'm' must be"),
        ('[models."m"]\naudio_output = "cheap"\n', ":2: price 'audio_output'"),
        ("[prices]\nx = 1\n", ":1: unknown table or key 'prices'"),
    ],
)
def test_malformed_pricing_file_names_the_line(tmp_path: Path, content: str, message: str):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(PricingError, match=message):
        load_pricing(path)


def test_gpt_live_bills_per_second_active_and_standby():
    one, one_one = BUILTIN_PRICES["gpt-live-1"], BUILTIN_PRICES["gpt-live-1.1"]
    assert seconds_cost(one, 90, 0) == pytest.approx(90 * 0.05 / 60)  # not rounded to a minute
    assert seconds_cost(one_one, 60, 30) == pytest.approx(0.05 + 30 * 0.02 / 60)
    assert seconds_cost(one, 60, 30) is None  # standby time without a standby price
    assert seconds_cost(BUILTIN_PRICES["gpt-realtime"], 60, 0) is None


def test_pricing_file_takes_per_second_session_prices(tmp_path: Path):
    path = tmp_path / "prices.toml"
    path.write_text('[models."gpt-live-1"]\nsession_per_minute = 0.06\nstandby_per_minute = 0.01\n')
    price = price_table(str(path)).lookup("gpt-live-1-2026-05-01")
    assert price == Price(session_per_minute=0.06, standby_per_minute=0.01)
