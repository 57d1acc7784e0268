from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.apply_result import ApplyResult
from ...models.problem import Problem
from ...models.webhook_json import WebhookJson
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    name: str,
    *,
    body: str | str | File | WebhookJson | Unset = UNSET,
    dry_run: bool | Unset = UNSET,
    x_tenant_slug: str | Unset = UNSET,
    if_match: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(x_tenant_slug, Unset):
        headers["X-Tenant-Slug"] = x_tenant_slug

    if not isinstance(if_match, Unset):
        headers["If-Match"] = if_match

    params: dict[str, Any] = {}

    params["dry_run"] = dry_run

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/api/webhooks/{name}".format(
            name=quote(str(name), safe=""),
        ),
        "params": params,
    }

    if isinstance(body, str):
        _kwargs["content"] = body.encode("utf-8")
        headers["Content-Type"] = "application/yaml"
    elif isinstance(body, File):
        _kwargs["content"] = body.payload

        headers["Content-Type"] = "application/zip"
    elif isinstance(body, WebhookJson):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/json; charset=utf-8"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ApplyResult | Problem | None:
    if response.status_code == 200:
        response_200 = ApplyResult.from_dict(response.json())

        return response_200

    if response.status_code == 201:
        response_201 = ApplyResult.from_dict(response.json())

        return response_201

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 412:
        response_412 = Problem.from_dict(response.json())

        return response_412

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())

        return response_500

    if response.status_code == 502:
        response_502 = Problem.from_dict(response.json())

        return response_502

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if response.status_code == 504:
        response_504 = Problem.from_dict(response.json())

        return response_504

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ApplyResult | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    name: str,
    *,
    client: AuthenticatedClient,
    body: str | str | File | WebhookJson | Unset = UNSET,
    dry_run: bool | Unset = UNSET,
    x_tenant_slug: str | Unset = UNSET,
    if_match: str | Unset = UNSET,
) -> Response[ApplyResult | Problem]:
    """Create or update a webhook from its YAML (or a ZIP with its transforms)

     The body is the declaration as `application/yaml` (or `text/yaml`),
    an `application/zip` holding `webhook.yaml` at its root and the code
    files it names, or `application/json` with the same as strings
    (`{"yaml": …, "files": {path: source}}`). Every problem is listed at once, each as
    `webhook.yaml:LINE:COLUMN`; `${SECRET:NAME}` must name an existing
    tenant secret. `dry_run=true` checks and answers without recording.

    Args:
        name (str):
        dry_run (bool | Unset):
        x_tenant_slug (str | Unset):
        if_match (str | Unset):
        body (str):
        body (str):
        body (File):
        body (WebhookJson): The declaration and its code files as JSON strings.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ApplyResult | Problem]
    """

    kwargs = _get_kwargs(
        name=name,
        body=body,
        dry_run=dry_run,
        x_tenant_slug=x_tenant_slug,
        if_match=if_match,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    name: str,
    *,
    client: AuthenticatedClient,
    body: str | str | File | WebhookJson | Unset = UNSET,
    dry_run: bool | Unset = UNSET,
    x_tenant_slug: str | Unset = UNSET,
    if_match: str | Unset = UNSET,
) -> ApplyResult | Problem | None:
    """Create or update a webhook from its YAML (or a ZIP with its transforms)

     The body is the declaration as `application/yaml` (or `text/yaml`),
    an `application/zip` holding `webhook.yaml` at its root and the code
    files it names, or `application/json` with the same as strings
    (`{"yaml": …, "files": {path: source}}`). Every problem is listed at once, each as
    `webhook.yaml:LINE:COLUMN`; `${SECRET:NAME}` must name an existing
    tenant secret. `dry_run=true` checks and answers without recording.

    Args:
        name (str):
        dry_run (bool | Unset):
        x_tenant_slug (str | Unset):
        if_match (str | Unset):
        body (str):
        body (str):
        body (File):
        body (WebhookJson): The declaration and its code files as JSON strings.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ApplyResult | Problem
    """

    return sync_detailed(
        name=name,
        client=client,
        body=body,
        dry_run=dry_run,
        x_tenant_slug=x_tenant_slug,
        if_match=if_match,
    ).parsed


async def asyncio_detailed(
    name: str,
    *,
    client: AuthenticatedClient,
    body: str | str | File | WebhookJson | Unset = UNSET,
    dry_run: bool | Unset = UNSET,
    x_tenant_slug: str | Unset = UNSET,
    if_match: str | Unset = UNSET,
) -> Response[ApplyResult | Problem]:
    """Create or update a webhook from its YAML (or a ZIP with its transforms)

     The body is the declaration as `application/yaml` (or `text/yaml`),
    an `application/zip` holding `webhook.yaml` at its root and the code
    files it names, or `application/json` with the same as strings
    (`{"yaml": …, "files": {path: source}}`). Every problem is listed at once, each as
    `webhook.yaml:LINE:COLUMN`; `${SECRET:NAME}` must name an existing
    tenant secret. `dry_run=true` checks and answers without recording.

    Args:
        name (str):
        dry_run (bool | Unset):
        x_tenant_slug (str | Unset):
        if_match (str | Unset):
        body (str):
        body (str):
        body (File):
        body (WebhookJson): The declaration and its code files as JSON strings.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ApplyResult | Problem]
    """

    kwargs = _get_kwargs(
        name=name,
        body=body,
        dry_run=dry_run,
        x_tenant_slug=x_tenant_slug,
        if_match=if_match,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    name: str,
    *,
    client: AuthenticatedClient,
    body: str | str | File | WebhookJson | Unset = UNSET,
    dry_run: bool | Unset = UNSET,
    x_tenant_slug: str | Unset = UNSET,
    if_match: str | Unset = UNSET,
) -> ApplyResult | Problem | None:
    """Create or update a webhook from its YAML (or a ZIP with its transforms)

     The body is the declaration as `application/yaml` (or `text/yaml`),
    an `application/zip` holding `webhook.yaml` at its root and the code
    files it names, or `application/json` with the same as strings
    (`{"yaml": …, "files": {path: source}}`). Every problem is listed at once, each as
    `webhook.yaml:LINE:COLUMN`; `${SECRET:NAME}` must name an existing
    tenant secret. `dry_run=true` checks and answers without recording.

    Args:
        name (str):
        dry_run (bool | Unset):
        x_tenant_slug (str | Unset):
        if_match (str | Unset):
        body (str):
        body (str):
        body (File):
        body (WebhookJson): The declaration and its code files as JSON strings.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ApplyResult | Problem
    """

    return (
        await asyncio_detailed(
            name=name,
            client=client,
            body=body,
            dry_run=dry_run,
            x_tenant_slug=x_tenant_slug,
            if_match=if_match,
        )
    ).parsed
