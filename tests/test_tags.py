"""Session tags: `Rtrec-Property-*` headers and `rtrec_*` query parameters, parsed and stripped."""

from __future__ import annotations

from proxy.tags import MAX_PROPERTIES, MAX_VALUE_CHARS, session_tags, strip_query_tags


def test_headers_become_lower_cased_properties_and_are_named_for_stripping():
    headers = {"Rtrec-Property-Customer-Id": "acme", "Authorization": "Bearer x", "Rtrec-X": "1"}
    tags = session_tags(headers, "/v1/realtime?model=m")
    assert tags.properties == (("customer_id", "acme"),)
    assert set(tags.tag_headers) == {"Rtrec-Property-Customer-Id", "Rtrec-X"}
    assert tags.path == "/v1/realtime?model=m"


def test_query_parameters_become_properties_and_leave_the_path():
    tags = session_tags({}, "/v1/realtime?rtrec_env=prod&model=gpt-realtime&RTREC_team=a%20b")
    assert tags.properties == (("env", "prod"), ("team", "a b"))
    assert tags.path == "/v1/realtime?model=gpt-realtime"


def test_a_path_with_only_tags_loses_its_question_mark():
    assert strip_query_tags("/v1/realtime?rtrec_env=prod") == "/v1/realtime"


def test_other_query_bytes_are_kept_exactly_as_sent():
    path = "/v1/realtime?model=a%2Fb&x=%7E&rtrec_env=1#frag"
    assert strip_query_tags(path) == "/v1/realtime?model=a%2Fb&x=%7E#frag"


def test_header_wins_over_query_for_the_same_name():
    tags = session_tags({"Rtrec-Property-Env": "staging"}, "/v1/realtime?rtrec_env=prod")
    assert tags.properties == (("env", "staging"),)


def test_replay_of_comes_from_its_header_or_query_and_is_not_a_property():
    by_header = session_tags({"Rtrec-Replay-Of": "0193-abc"}, "/v1/realtime")
    by_query = session_tags({}, "/v1/realtime?rtrec_replay_of=0193-abc")
    assert by_header.replay_of == by_query.replay_of == "0193-abc"
    assert by_header.properties == by_query.properties == ()


def test_a_malformed_replay_of_is_ignored():
    assert session_tags({"Rtrec-Replay-Of": "x' OR 1=1"}, "/v1/realtime").replay_of is None


def test_secrets_are_redacted_from_values_and_secret_names():
    key = "sk-proj-abcdefghijklmnop"
    tags = session_tags(
        {"Rtrec-Property-Note": f"key {key}", "Rtrec-Property-Api-Key": "hunter2"}, "/v1/realtime"
    )
    assert dict(tags.properties) == {"note": "[REDACTED]", "api_key": "[REDACTED]"}


def test_count_and_value_length_are_bounded_and_bad_names_dropped():
    headers = {f"Rtrec-Property-P{i:02d}": "v" * 1000 for i in range(MAX_PROPERTIES + 5)}
    headers["Rtrec-Property-Bad.Name"] = "x"
    tags = session_tags(headers, "/v1/realtime")
    assert len(tags.properties) == MAX_PROPERTIES
    assert all(len(value) == MAX_VALUE_CHARS for _, value in tags.properties)
    assert "bad.name" not in dict(tags.properties)
