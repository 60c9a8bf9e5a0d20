"""The official ``openai`` client, built from :class:`ClientOptions` (OpenAI or Azure OpenAI).

>>> sorted(client_arguments(ClientOptions(api_key="k")))
['api_key', 'base_url', 'max_retries', 'timeout']
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: ``api-version`` sent to Azure OpenAI unless ``ft_azure_api_version`` says otherwise.
DEFAULT_AZURE_API_VERSION = "2024-10-21"
#: Where the SDK sends requests when neither ``base_url`` nor ``OPENAI_BASE_URL`` says.
OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class ClientOptions:
    """How the openai client is built.

    With ``azure_deployment`` the client is ``openai.AsyncAzureOpenAI`` with
    ``base_url`` as its ``azure_endpoint`` (the resource root, no ``/openai``),
    and the deployment is the model every request names::

        ClientOptions(api_key="...", base_url="https://acme.openai.azure.com",
                      azure_deployment="classifier-prod")
    """

    api_key: str
    base_url: str | None = None
    max_retries: int = 2
    timeout: float = 60.0
    azure_deployment: str | None = None
    azure_api_version: str = DEFAULT_AZURE_API_VERSION


def make_async_client(
    options: ClientOptions, on_response: Callable[[int, Mapping[str, str]], None] | None = None
) -> Any:
    """The ``openai`` async client ``options`` describe (OpenAI, or Azure OpenAI).

    ``on_response(status, headers)`` hears every HTTP response, the SDK's retries included.
    """
    import openai

    hooks: dict[str, list[Any]] = {}
    if on_response is not None:

        async def heard(response: Any) -> None:
            on_response(response.status_code, response.headers)

        hooks["response"] = [heard]
    # The SDK's own HTTP client, but sharing one TLS context: loading the CA bundle
    # for every client (one per window of cases) costs ~50 ms each time.
    http_client = openai.DefaultAsyncHttpxClient(verify=_tls_context(), event_hooks=hooks)
    kind = openai.AsyncAzureOpenAI if options.azure_deployment else openai.AsyncOpenAI
    return kind(**client_arguments(options), http_client=http_client)


def client_arguments(options: ClientOptions) -> dict[str, Any]:
    """The keyword arguments of the openai client (sync or async) ``options`` describe.

    A query string in ``base_url`` (a gateway's ``?key=...``) is sent with every
    request (the SDK would otherwise glue the request path onto it):

    >>> sorted(client_arguments(ClientOptions(api_key="k", azure_deployment="d")))
    ['api_key', 'api_version', 'azure_deployment', 'azure_endpoint', 'max_retries', 'timeout']
    >>> arguments = client_arguments(ClientOptions(api_key="k", base_url="http://h/v1?key=s"))
    >>> arguments["base_url"], arguments["default_query"]
    ('http://h/v1', {'key': 's'})
    """
    common: dict[str, Any] = {
        "api_key": options.api_key,
        "max_retries": options.max_retries,
        "timeout": options.timeout,
    }
    base_url = options.base_url
    if base_url and "?" in base_url:
        from urllib.parse import parse_qsl

        base_url, _, query = base_url.partition("?")
        common["default_query"] = dict(parse_qsl(query.partition("#")[0]))
    if options.azure_deployment:
        return {
            **common,
            "azure_endpoint": base_url,
            "azure_deployment": options.azure_deployment,
            "api_version": options.azure_api_version,
        }
    return {**common, "base_url": base_url}


@functools.cache
def _tls_context() -> Any:
    """The TLS context the SDK's HTTP library builds by default, built once."""
    import importlib

    import openai

    library = openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0]  # httpx(2)
    return importlib.import_module(library).create_ssl_context()


def make_sync_client(options: ClientOptions) -> Any:
    """The synchronous ``openai`` client ``options`` describe (OpenAI, or Azure OpenAI)."""
    import openai

    kind = openai.AzureOpenAI if options.azure_deployment else openai.OpenAI
    return kind(**client_arguments(options))


def request_url(options: ClientOptions, path: str) -> str:
    """The URL the client built from ``options`` sends a request for ``path`` to (no query).

    As the SDK builds it: ``base_url`` (else ``OPENAI_BASE_URL``, else OpenAI's);
    for Azure, the deployment's path under the resource endpoint.  A replay
    matches on this URL's path without building a client.

    >>> request_url(ClientOptions(api_key="k", base_url="http://h:1/v1?key=s"), "/completions")
    'http://h:1/v1/completions'
    >>> request_url(ClientOptions(api_key="k", base_url="https://r.openai.azure.com",
    ...                           azure_deployment="d"), "/chat/completions")
    'https://r.openai.azure.com/openai/deployments/d/chat/completions'
    """
    base = (options.base_url or "").partition("?")[0]
    if options.azure_deployment:
        base = f"{base.rstrip('/')}/openai/deployments/{options.azure_deployment}"
    elif not base:
        base = os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
    return base.rstrip("/") + path
