"""The reference server's Files store and its package structure, over real HTTP.

Uploads go through the official client's multipart encoding and are read back
with the server's own parser: any bytes and any ordinary file name round-trip.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytest_ftclass.reference
from pytest_ftclass.reference import ReferenceServer
from pytest_ftclass.reference.files import read_form

PACKAGE = Path(pytest_ftclass.reference.__file__).parent
#: what the reference model may import from the rest of the package: the case model only
ALLOWED_OUTSIDE = {"pytest_ftclass.cases.sources"}


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer({}) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ReferenceServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


FILE_NAMES = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters='"\\%/'),
    min_size=1,
    max_size=30,
).filter(lambda name: name.strip() == name)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=2000), name=FILE_NAMES, purpose=st.sampled_from(["batch", "fine-tune"])
)
def test_any_upload_round_trips(
    client: openai.OpenAI, data: bytes, name: str, purpose: str
) -> None:
    uploaded = client.files.create(file=(name, data, "application/octet-stream"), purpose=purpose)  # type: ignore[arg-type]
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == (name, len(data), purpose)
    assert client.files.retrieve(uploaded.id).filename == name
    assert client.files.content(uploaded.id).content == data


def test_lines_ending_in_crlf_and_a_boundary_lookalike_are_kept(client: openai.OpenAI) -> None:
    data = b'{"a": 1}\r\n--not-a-boundary\r\n\r\n{"b": 2}\n\r'
    uploaded = client.files.create(file=("x.jsonl", data), purpose="batch")
    assert client.files.content(uploaded.id).content == data


def test_uploads_that_are_not_forms_are_openai_shaped_400s(
    server: ReferenceServer, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as not_a_form:
        client.post("/files", body={"purpose": "batch"}, cast_to=object)
    assert "multipart/form-data" in not_a_form.value.message
    with pytest.raises(openai.BadRequestError) as no_purpose:
        client.post(
            "/files",
            body={},
            files=[("file", ("x.jsonl", b"{}"))],
            options={"headers": {"Content-Type": "multipart/form-data"}},
            cast_to=object,
        )
    assert no_purpose.value.param == "purpose"
    with pytest.raises(ValueError, match="multipart"):
        read_form(b"{}", "application/json")


def test_same_uploads_give_the_same_ids_on_a_fresh_server() -> None:
    def upload_twice() -> list[str]:
        with ReferenceServer({}) as fresh:
            api = openai.OpenAI(base_url=fresh.base_url, api_key="sk-test", max_retries=0)
            return [api.files.create(file=("a.jsonl", b"{}\n"), purpose="batch").id for _ in "ab"]

    first = upload_twice()
    assert first == upload_twice()
    assert first[0] != first[1]  # the same bytes twice are two files


# -- structure --------------------------------------------------------------------------


def imports_of(path: Path) -> set[str]:
    """The ``pytest_ftclass`` modules a module imports, at any depth in its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("pytest_ftclass")}


def test_the_reference_package_has_no_import_cycle_and_no_client_code() -> None:
    graph = {
        f"pytest_ftclass.reference.{path.stem}": imports_of(path)
        for path in sorted(PACKAGE.glob("*.py"))
        if path.stem != "__init__"
    }
    outside = {name for names in graph.values() for name in names} - set(graph)
    assert outside - {"pytest_ftclass.reference"} <= ALLOWED_OUTSIDE

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, "import cycle: " + " -> ".join((*trail, module))
        for imported in graph.get(module, set()):
            visit(imported, (*trail, module))

    for module in graph:
        visit(module, ())
