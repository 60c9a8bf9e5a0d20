"""Which key and endpoint a model is asked with: :func:`client_options` for the run.

The key comes from the environment (``OPENAI_API_KEY``; for Azure
``AZURE_OPENAI_API_KEY``, else ``OPENAI_API_KEY``) and is needed only to
record; a replay sends nothing and takes a placeholder.  A ``local…`` model is
asked in-process, whatever ``ft_base_url`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pytest_ftclass.asking.clients import ClientOptions
from pytest_ftclass.asking.endpoints import is_local_model
from pytest_ftclass.options import Settings

#: Base URL used for the local model when nothing is sent (replay only): never contacted.
UNUSED_BASE_URL = "http://127.0.0.1:9/v1"
PLACEHOLDER_KEY = "sk-ftclass-placeholder"


def client_options(
    model: str,
    settings: Settings,
    environ: Mapping[str, str],
    local_base_url: Callable[[str], str],
) -> ClientOptions:
    """How the client asking ``model`` is built; ``RuntimeError`` says what is missing.

    ``local_base_url(model)`` starts the local reference model (live only).

    >>> options = client_options("local", Settings(), {}, lambda model: "unused")
    >>> options.base_url, options.max_retries
    ('http://127.0.0.1:9/v1', 0)
    """
    if settings.azure_deployment:
        return _azure(settings, environ)
    live = settings.live
    if is_local_model(model):
        base_url: str | None = local_base_url(model) if live else UNUSED_BASE_URL
    else:
        base_url = settings.base_url
    key = environ.get("OPENAI_API_KEY")
    if not key:
        if live and base_url is None:
            raise RuntimeError(
                f"OPENAI_API_KEY is not set: it is needed to record from {model} "
                f"(record mode '{settings.record_mode}')"
            )
        key = PLACEHOLDER_KEY
    return ClientOptions(
        api_key=key,
        base_url=base_url,
        max_retries=settings.max_retries if live else 0,
        timeout=settings.timeout,
    )


def _azure(settings: Settings, environ: Mapping[str, str]) -> ClientOptions:
    """Azure OpenAI: ``ft_base_url`` (or ``AZURE_OPENAI_ENDPOINT``) is the resource endpoint.

    Replay needs neither key nor endpoint: requests match on path and body,
    whatever host they name.
    """
    live = settings.live
    deployment = settings.azure_deployment
    key = environ.get("AZURE_OPENAI_API_KEY") or environ.get("OPENAI_API_KEY")
    endpoint = settings.base_url or environ.get("AZURE_OPENAI_ENDPOINT")
    if live and not endpoint:
        raise RuntimeError(
            f"Azure deployment {deployment!r} needs its resource endpoint: set "
            "--ft-base-url (e.g. https://NAME.openai.azure.com) or AZURE_OPENAI_ENDPOINT"
        )
    if live and not key:
        raise RuntimeError(
            f"AZURE_OPENAI_API_KEY (or OPENAI_API_KEY) is not set: it is needed to record "
            f"from Azure deployment {deployment!r} (record mode '{settings.record_mode}')"
        )
    return ClientOptions(
        api_key=key or PLACEHOLDER_KEY,
        base_url=endpoint or UNUSED_BASE_URL.removesuffix("/v1"),
        max_retries=settings.max_retries if live else 0,
        timeout=settings.timeout,
        azure_deployment=deployment,
        azure_api_version=settings.azure_api_version,
    )
