"""`cco run`'s proxy and response cache, driven by a client no one here wrote: the official
`anthropic` Python SDK, pointed at the proxy (`base_url`), against the stand-in Messages API
of tests/upstream.py on 127.0.0.1 (its docstring says where it differs from the real one).

Slow: the default render's binary is compiled (conftest.default_binary). Every client is
made with `max_retries=0`, so each call is one request and the upstream's counts are exact.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest
import upstream

from helpers import clean_env, free_port, get_json, make_certificate, run, wait_for_health

pytestmark = pytest.mark.slow

KEY = "sk-ant-test-0123456789-do-not-leak"
MODEL = "claude-sonnet-4-5"


@dataclass
class Running:
    proxy: int
    dashboard: int
    home: Path
    logs: Path

    def client(self, **options: Any) -> anthropic.Anthropic:
        return upstream.client(self.proxy, **options)

    def stats(self) -> Any:
        status, body = get_json(self.dashboard, "/api/stats")
        assert status == 200
        return body


@pytest.fixture
def stand_in() -> Iterator[tuple[upstream.Server, upstream.StandIn]]:
    server, state = upstream.serve(KEY)
    yield server, state
    state.hold.set()
    server.shutdown()


@contextmanager
def running(binary: Path, home: Path, upstream_url: str, **variables: str) -> Iterator[Running]:
    """`cco run` forwarding to `upstream_url`, with the key in its environment; stopped with
    SIGTERM at the end, which must exit 0."""
    proxy, dashboard = free_port(), free_port()
    home.mkdir(parents=True, exist_ok=True)
    logs = home.parent / f"{home.name}.log"
    env = clean_env(
        home,
        CCO_PROXY_PORT=str(proxy),
        CCO_DASHBOARD_PORT=str(dashboard),
        CCO_UPSTREAM=upstream_url,
        ANTHROPIC_API_KEY=KEY,
        RUST_LOG="debug",
        **variables,
    )
    with logs.open("a") as log:
        server = subprocess.Popen([str(binary), "run"], env=env, stdout=log, stderr=log)
    try:
        wait_for_health(proxy)
        yield Running(proxy, dashboard, home, logs)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, logs.read_text()


def text(message: Any) -> str:
    """A Messages answer's text."""
    return str(message.content[0].text)


def error(raised: pytest.ExceptionInfo[anthropic.APIStatusError]) -> dict[str, Any]:
    """The error object of an API error's body."""
    body = raised.value.body
    assert isinstance(body, dict), body
    found = body["error"]
    assert isinstance(found, dict)
    return found


def ask(client: anthropic.Anthropic, text: str = "hello") -> Any:
    """One Messages call, with the raw response (for the proxy's headers)."""
    return client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": text}]
    )


def test_a_call_goes_upstream_with_the_key_and_the_same_call_comes_from_the_cache(
    default_binary: Path, stand_in: tuple[upstream.Server, upstream.StandIn], tmp_path: Path
) -> None:
    server, state = stand_in
    with running(default_binary, tmp_path / "home", server.url) as cco:
        first = ask(cco.client())
        message = first.parse()
        assert text(message) == upstream.ANSWER
        assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 5)
        assert first.headers["x-cco-cache"] == "miss"
        # The request as the SDK sent it, with the key the proxy added and no hop-by-hop header.
        seen = state.seen[-1]
        assert seen.headers["x-api-key"] == KEY
        assert seen.headers["anthropic-version"]  # the SDK's API version, passed through
        assert seen.headers["user-agent"].startswith("Anthropic/Python")
        assert "connection" not in seen.headers or seen.headers["connection"] == "keep-alive"
        assert seen.body["messages"] == [{"role": "user", "content": "hello"}]

        second = ask(cco.client())
        assert second.headers["x-cco-cache"] == "hit"
        assert int(second.headers["age"]) >= 0
        assert text(second.parse()) == upstream.ANSWER
        assert state.count() == 1

        # Another question, and the same one with another anthropic-beta, are other requests.
        assert ask(cco.client(), "hello again").headers["x-cco-cache"] == "miss"
        beta = cco.client(headers={"anthropic-beta": "x-1"})
        assert ask(beta).headers["x-cco-cache"] == "miss"
        assert state.count() == 3

        stats = cco.stats()
        [model] = stats["models"]
        assert model["model"] == MODEL
        assert (model["requests"], model["cache_hits"], model["cache_misses"]) == (4, 1, 3)
        assert model["upstream_errors"] == 0
        assert model["input_tokens"] == 4 + 5 + 4 and model["output_tokens"] == 15
        assert model["bytes_saved"] == len(first.http_response.content)
        assert stats["cache"]["entries"] == 3
        assert {(entry["route"], entry["status"]) for entry in stats["requests"]} >= {("upstream", 200)}


def test_a_streamed_call_arrives_as_the_upstream_sends_it_and_is_never_cached(
    default_binary: Path, stand_in: tuple[upstream.Server, upstream.StandIn], tmp_path: Path
) -> None:
    server, state = stand_in
    with running(default_binary, tmp_path / "home", server.url) as cco:
        client = cco.client()
        with client.messages.stream(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
            texts = iter(stream.text_stream)
            # The stand-in holds the rest of its stream until the test has this first word:
            # a proxy that buffered would never deliver it.
            assert next(texts) == "The"
            assert stream.response.headers["x-cco-cache"] == "bypass", "a stream is never looked up"
            # A buffering proxy would pass "The" on only after the stand-in gave up holding.
            assert state.holding.wait(timeout=10), "the first word came while the stand-in held the rest"
            state.hold.set()
            assert "The" + "".join(texts) == upstream.ANSWER
            final = stream.get_final_message()
        assert final.usage.output_tokens == 5
        state.hold.clear()
        threading.Timer(1, state.hold.set).start()
        with client.messages.stream(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
            assert stream.get_final_text() == upstream.ANSWER
        assert state.count() == 2, "a streamed answer is never served from the cache"
        [model] = cco.stats()["models"]
        assert (model["cache_hits"], model["cache_misses"], model["requests"]) == (0, 0, 2)
        # Tokens read from the events as they passed: message_start's input, message_delta's output.
        assert (model["input_tokens"], model["output_tokens"]) == (8, 10)


def test_identical_calls_at_once_reach_the_upstream_once(
    default_binary: Path, stand_in: tuple[upstream.Server, upstream.StandIn], tmp_path: Path
) -> None:
    server, state = stand_in
    with running(default_binary, tmp_path / "home", server.url) as cco:
        answers: list[str] = []

        def call() -> None:
            answers.append(ask(cco.client(), "sleep 1").headers["x-cco-cache"])

        threads = [threading.Thread(target=call) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(answers) == ["hit", "hit", "hit", "hit", "miss"]
        assert state.count() == 1


def test_an_answer_older_than_the_ttl_is_fetched_again(
    default_binary: Path, stand_in: tuple[upstream.Server, upstream.StandIn], tmp_path: Path
) -> None:
    server, state = stand_in
    # 0.001 hours: 3.6 s.
    with running(default_binary, tmp_path / "home", server.url, CCO_CACHE_TTL="0.001") as cco:
        assert ask(cco.client()).headers["x-cco-cache"] == "miss"
        assert ask(cco.client()).headers["x-cco-cache"] == "hit"
        time.sleep(4)
        assert ask(cco.client()).headers["x-cco-cache"] == "miss"
        assert state.count() == 2


def test_the_least_recently_used_answer_is_evicted_at_the_size_bound(
    default_binary: Path, stand_in: tuple[upstream.Server, upstream.StandIn], tmp_path: Path
) -> None:
    server, state = stand_in
    home = tmp_path / "home"
    # 1 MB holds two answers of 400 kB, not three.
    with running(default_binary, home, server.url, CCO_CACHE_SIZE="1") as cco:
        client = cco.client()

        def cache_of(text: str) -> str:
            return str(ask(client, f"size 400000 {text}").headers["x-cco-cache"])

        assert [cache_of("a"), cache_of("b"), cache_of("a")] == ["miss", "miss", "hit"]
        assert cache_of("c") == "miss"  # evicts b, the least recently used
        assert [cache_of("a"), cache_of("c"), cache_of("b")] == ["hit", "hit", "miss"]
        assert state.count() == 4
        stored = sum(path.stat().st_size for path in (home / "cache").glob("*.entry"))
        assert 800_000 < stored <= 1_000_000
        assert cco.stats()["cache"] == {"entries": 2, "bytes": stored}


def test_an_answer_too_big_for_the_cache_streams_through_and_is_not_kept(
    default_binary: Path, stand_in: tuple[upstream.Server, upstream.StandIn], tmp_path: Path
) -> None:
    """Over CCO_CACHE_SIZE (1 MB here), whether its length is announced or not (sent in chunks,
    as a server that does not know it up front): the client gets all of it, marked miss, while
    the upstream still sends the rest (the proxy reads no more than the cache could keep before
    passing it on), nothing is stored, and the same call goes upstream again."""
    server, state = stand_in
    home = tmp_path / "home"
    with running(default_binary, home, server.url, CCO_CACHE_SIZE="1") as cco:
        client = cco.client()
        for _ in range(2):
            raw = ask(client, "size 1500000 announced")
            assert raw.headers["x-cco-cache"] == "miss"
            assert len(text(raw.parse())) >= 1_500_000
        question: list[anthropic.types.MessageParam] = [
            {"role": "user", "content": "size 3000000 chunked 65536 hold 1200000"}
        ]
        for _ in range(2):
            state.hold.clear()
            create = client.messages.with_streaming_response.create
            with create(model=MODEL, max_tokens=64, messages=question) as response:
                assert response.headers["x-cco-cache"] == "miss"
                assert "content-length" not in response.headers
                chunks = response.iter_bytes()
                received = b""
                while len(received) <= 1_000_000:
                    received += next(chunks)
                assert state.holding.wait(timeout=10), "the first megabyte came while the stand-in held the rest"
                state.hold.set()
                received += b"".join(chunks)
            answer = json.loads(received)
            assert len(answer["content"][0]["text"]) >= 3_000_000
        assert state.count() == 4, "none of them was kept"
        assert list((home / "cache").glob("*.entry")) == []
        [model] = cco.stats()["models"]
        assert (model["cache_misses"], model["cache_hits"], model["upstream_errors"]) == (4, 0, 0)
        assert model["output_tokens"] == 2 * answer["usage"]["output_tokens"] + 2 * raw.parse().usage.output_tokens


def test_the_cache_survives_a_restart_and_a_damaged_entry_is_set_aside(
    default_binary: Path, stand_in: tuple[upstream.Server, upstream.StandIn], tmp_path: Path
) -> None:
    server, state = stand_in
    home = tmp_path / "home"
    questions = ["first", "second", "third"]
    with running(default_binary, home, server.url) as cco:
        for question in questions:
            ask(cco.client(), question)
    with running(default_binary, home, server.url) as cco:
        assert ask(cco.client(), "first").headers["x-cco-cache"] == "hit"
    assert state.count() == 3
    # The counts saved at the first stop came back at the start and went on counting.
    saved = json.loads((home / "stats.json").read_text())
    assert [(entry["model"], entry["cache_hits"], entry["cache_misses"]) for entry in saved["models"]] == [
        (MODEL, 1, 3)
    ]

    # One entry cut short; another replaced by another program's file under its name.
    damaged, foreign, _ = sorted((home / "cache").glob("*.entry"))
    damaged.write_bytes(damaged.read_bytes()[:-10])
    foreign.write_bytes(b"\x89PNG not an entry\n")
    logged = len((tmp_path / "home.log").read_text())
    with running(default_binary, home, server.url) as cco:
        for question in questions:
            assert ask(cco.client(), question).parse().content[0].text == upstream.ANSWER
    log = (tmp_path / "home.log").read_text()[logged:]
    warnings = [line for line in log.splitlines() if "set aside" in line]
    assert len(warnings) == 2, log
    assert any("its header promises" in line for line in warnings), warnings
    assert any("not a cache entry" in line for line in warnings), warnings
    assert sorted(path.name for path in (home / "cache").glob("*.set-aside")) == [
        damaged.name + ".set-aside",
        foreign.name + ".set-aside",
    ]
    assert state.count() == 5, "the two set aside were fetched again, the whole one was not"


def test_upstream_errors_reach_the_client_clearly_and_are_counted_never_cached(
    default_binary: Path, stand_in: tuple[upstream.Server, upstream.StandIn], tmp_path: Path
) -> None:
    server, state = stand_in
    with running(default_binary, tmp_path / "home", server.url, CCO_UPSTREAM_TIMEOUT="1") as cco:
        client = cco.client(timeout=30)
        for _ in range(2):
            with pytest.raises(anthropic.RateLimitError) as limited:
                ask(client, "status 429")
            assert limited.value.response.headers["retry-after"] == "1"
            assert limited.value.response.headers["x-cco-cache"] == "miss", "looked up, fetched, not kept"
            assert error(limited)["type"] == "rate_limit_error"
        with pytest.raises(anthropic.InternalServerError) as failed:
            ask(client, "status 500")
        assert failed.value.status_code == 500
        assert state.count() == 3, "errors are never served from the cache"
        # A request the cache does not take (no-store) says so, whatever the answer.
        with pytest.raises(anthropic.RateLimitError) as bypassed:
            ask(client.with_options(default_headers={"cache-control": "no-store"}), "status 429")
        assert bypassed.value.response.headers["x-cco-cache"] == "bypass"
        # Slower than CCO_UPSTREAM_TIMEOUT: the proxy answers 504 well before the client's 30 s.
        with pytest.raises(anthropic.InternalServerError) as timed_out:
            ask(client, "sleep 3")
        assert timed_out.value.status_code == 504
        assert error(timed_out)["type"] == "timeout_error"
        assert "did not answer within 1 s" in error(timed_out)["message"]
        [model] = cco.stats()["models"]
        assert model["upstream_errors"] == 5 and model["cache_hits"] == 0

    closed = free_port()
    with running(default_binary, tmp_path / "home", f"http://127.0.0.1:{closed}") as cco:
        with pytest.raises(anthropic.InternalServerError) as unreachable:
            ask(cco.client(timeout=30))
        assert unreachable.value.status_code == 502
        assert f"the upstream http://127.0.0.1:{closed}/ cannot be reached" in error(unreachable)["message"]


def test_the_key_never_leaks_and_a_clients_own_key_is_kept(
    default_binary: Path, stand_in: tuple[upstream.Server, upstream.StandIn], tmp_path: Path
) -> None:
    server, state = stand_in
    home = tmp_path / "home"
    with running(default_binary, home, server.url) as cco:
        ask(cco.client())
        ask(cco.client())
        with pytest.raises(anthropic.RateLimitError):
            ask(cco.client(), "status 429")
        with cco.client().messages.stream(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]) as s:
            state.hold.set()
            s.get_final_message()
        # A client with its own key: passed through as it is, and the upstream refuses it, even
        # for a question the cache holds an answer to (fetched with another key).
        own = anthropic.Anthropic(base_url=f"http://127.0.0.1:{cco.proxy}", api_key="sk-own", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError):
            ask(own)
        assert state.seen[-1].headers["authorization"] == "Bearer sk-own"
        assert "x-api-key" not in state.seen[-1].headers
        served = [
            json.dumps(cco.stats()),
            urllib_text(cco.dashboard, "/"),
        ]
        env = clean_env(home, ANTHROPIC_API_KEY=KEY)
        shown = run([str(default_binary), "config"], tmp_path, env=env).stdout
        assert "api key          set" in shown
        served.append(shown)
    written = [path.read_bytes().decode(errors="replace") for path in home.rglob("*") if path.is_file()]
    log = (tmp_path / "home.log").read_text()
    for text in [log, *written, *served]:
        assert KEY not in text


def test_tls_to_the_upstream_trusts_the_systems_roots(default_binary: Path, tmp_path: Path) -> None:
    """rustls with the roots the system names: SSL_CERT_FILE here, as rustls-native-certs reads
    it; a certificate no root vouches for is a 502 naming the problem."""
    (tmp_path / "tls").mkdir()
    authority, chain = make_certificate(tmp_path / "tls")
    server, state = upstream.serve(KEY, certificate=chain)
    url = server.url
    with running(default_binary, tmp_path / "trusted", url, SSL_CERT_FILE=str(authority)) as cco:
        assert ask(cco.client()).parse().content[0].text == upstream.ANSWER
    with running(default_binary, tmp_path / "untrusted", url, SSL_CERT_FILE=str(tmp_path / "none.pem")) as cco:
        with pytest.raises(anthropic.InternalServerError) as refused:
            ask(cco.client())
        assert refused.value.status_code == 502
        assert "certificate" in error(refused)["message"].lower()
    state.hold.set()
    server.shutdown()
    assert state.count() == 1


def urllib_text(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return str(response.read().decode())
