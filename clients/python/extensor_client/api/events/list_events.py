import datetime
from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.event_order import EventOrder
from ...models.event_page import EventPage
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    after: int | Unset = UNSET,
    before: int | Unset = UNSET,
    order: EventOrder | Unset = EventOrder.ASC,
    limit: int | Unset = UNSET,
    type_: str | Unset = UNSET,
    stream: str | Unset = UNSET,
    from_: datetime.datetime | Unset = UNSET,
    to: datetime.datetime | Unset = UNSET,
    x_tenant_slug: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(x_tenant_slug, Unset):
        headers["X-Tenant-Slug"] = x_tenant_slug

    params: dict[str, Any] = {}

    params["after"] = after

    params["before"] = before

    json_order: str | Unset = UNSET
    if not isinstance(order, Unset):
        json_order = order.value

    params["order"] = json_order

    params["limit"] = limit

    params["type"] = type_

    params["stream"] = stream

    json_from_: str | Unset = UNSET
    if not isinstance(from_, Unset):
        json_from_ = from_.isoformat()
    params["from"] = json_from_

    json_to: str | Unset = UNSET
    if not isinstance(to, Unset):
        json_to = to.isoformat()
    params["to"] = json_to

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/events",
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> EventPage | Problem | None:
    if response.status_code == 200:
        response_200 = EventPage.from_dict(response.json())

        return response_200

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[EventPage | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    after: int | Unset = UNSET,
    before: int | Unset = UNSET,
    order: EventOrder | Unset = EventOrder.ASC,
    limit: int | Unset = UNSET,
    type_: str | Unset = UNSET,
    stream: str | Unset = UNSET,
    from_: datetime.datetime | Unset = UNSET,
    to: datetime.datetime | Unset = UNSET,
    x_tenant_slug: str | Unset = UNSET,
) -> Response[EventPage | Problem]:
    """Query the tenant's events by position, type, stream and time, either end first

    Args:
        after (int | Unset):
        before (int | Unset):
        order (EventOrder | Unset): Which end of the range a page of events starts from. Default:
            EventOrder.ASC.
        limit (int | Unset):
        type_ (str | Unset):
        stream (str | Unset):
        from_ (datetime.datetime | Unset):
        to (datetime.datetime | Unset):
        x_tenant_slug (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[EventPage | Problem]
    """

    kwargs = _get_kwargs(
        after=after,
        before=before,
        order=order,
        limit=limit,
        type_=type_,
        stream=stream,
        from_=from_,
        to=to,
        x_tenant_slug=x_tenant_slug,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    after: int | Unset = UNSET,
    before: int | Unset = UNSET,
    order: EventOrder | Unset = EventOrder.ASC,
    limit: int | Unset = UNSET,
    type_: str | Unset = UNSET,
    stream: str | Unset = UNSET,
    from_: datetime.datetime | Unset = UNSET,
    to: datetime.datetime | Unset = UNSET,
    x_tenant_slug: str | Unset = UNSET,
) -> EventPage | Problem | None:
    """Query the tenant's events by position, type, stream and time, either end first

    Args:
        after (int | Unset):
        before (int | Unset):
        order (EventOrder | Unset): Which end of the range a page of events starts from. Default:
            EventOrder.ASC.
        limit (int | Unset):
        type_ (str | Unset):
        stream (str | Unset):
        from_ (datetime.datetime | Unset):
        to (datetime.datetime | Unset):
        x_tenant_slug (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        EventPage | Problem
    """

    return sync_detailed(
        client=client,
        after=after,
        before=before,
        order=order,
        limit=limit,
        type_=type_,
        stream=stream,
        from_=from_,
        to=to,
        x_tenant_slug=x_tenant_slug,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    after: int | Unset = UNSET,
    before: int | Unset = UNSET,
    order: EventOrder | Unset = EventOrder.ASC,
    limit: int | Unset = UNSET,
    type_: str | Unset = UNSET,
    stream: str | Unset = UNSET,
    from_: datetime.datetime | Unset = UNSET,
    to: datetime.datetime | Unset = UNSET,
    x_tenant_slug: str | Unset = UNSET,
) -> Response[EventPage | Problem]:
    """Query the tenant's events by position, type, stream and time, either end first

    Args:
        after (int | Unset):
        before (int | Unset):
        order (EventOrder | Unset): Which end of the range a page of events starts from. Default:
            EventOrder.ASC.
        limit (int | Unset):
        type_ (str | Unset):
        stream (str | Unset):
        from_ (datetime.datetime | Unset):
        to (datetime.datetime | Unset):
        x_tenant_slug (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[EventPage | Problem]
    """

    kwargs = _get_kwargs(
        after=after,
        before=before,
        order=order,
        limit=limit,
        type_=type_,
        stream=stream,
        from_=from_,
        to=to,
        x_tenant_slug=x_tenant_slug,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    after: int | Unset = UNSET,
    before: int | Unset = UNSET,
    order: EventOrder | Unset = EventOrder.ASC,
    limit: int | Unset = UNSET,
    type_: str | Unset = UNSET,
    stream: str | Unset = UNSET,
    from_: datetime.datetime | Unset = UNSET,
    to: datetime.datetime | Unset = UNSET,
    x_tenant_slug: str | Unset = UNSET,
) -> EventPage | Problem | None:
    """Query the tenant's events by position, type, stream and time, either end first

    Args:
        after (int | Unset):
        before (int | Unset):
        order (EventOrder | Unset): Which end of the range a page of events starts from. Default:
            EventOrder.ASC.
        limit (int | Unset):
        type_ (str | Unset):
        stream (str | Unset):
        from_ (datetime.datetime | Unset):
        to (datetime.datetime | Unset):
        x_tenant_slug (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        EventPage | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            after=after,
            before=before,
            order=order,
            limit=limit,
            type_=type_,
            stream=stream,
            from_=from_,
            to=to,
            x_tenant_slug=x_tenant_slug,
        )
    ).parsed
