from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="ActorView")


@_attrs_define
class ActorView:
    """One actor of the supervision tree.

    Attributes:
        path (str): `/tenants/<tenant>`, `/tenants/<tenant>/installations/<ins>`, …
        kind (str): `tenant_supervisor`, `tenant`, `installation`, or a service name.
        status (str): `starting`, `running`, `passivated`, `restarting`, `failed`, `stopped`.
        restarts (int):
        queue_depth (int):
        tenant (None | str | Unset):
        tenant_slug (None | str | Unset): The tenant's slug, so an operator finds "acme" without a lookup.
        plugin_slug (None | str | Unset): For an installation's actor, its plugin's slug.
        started_at (datetime.datetime | None | Unset):
        uptime_s (float | None | Unset): Seconds since it (re)started.
        last_error (None | str | Unset):
        last_error_at (datetime.datetime | None | Unset):
    """

    path: str
    kind: str
    status: str
    restarts: int
    queue_depth: int
    tenant: None | str | Unset = UNSET
    tenant_slug: None | str | Unset = UNSET
    plugin_slug: None | str | Unset = UNSET
    started_at: datetime.datetime | None | Unset = UNSET
    uptime_s: float | None | Unset = UNSET
    last_error: None | str | Unset = UNSET
    last_error_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        path = self.path

        kind = self.kind

        status = self.status

        restarts = self.restarts

        queue_depth = self.queue_depth

        tenant: None | str | Unset
        if isinstance(self.tenant, Unset):
            tenant = UNSET
        else:
            tenant = self.tenant

        tenant_slug: None | str | Unset
        if isinstance(self.tenant_slug, Unset):
            tenant_slug = UNSET
        else:
            tenant_slug = self.tenant_slug

        plugin_slug: None | str | Unset
        if isinstance(self.plugin_slug, Unset):
            plugin_slug = UNSET
        else:
            plugin_slug = self.plugin_slug

        started_at: None | str | Unset
        if isinstance(self.started_at, Unset):
            started_at = UNSET
        elif isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        uptime_s: float | None | Unset
        if isinstance(self.uptime_s, Unset):
            uptime_s = UNSET
        else:
            uptime_s = self.uptime_s

        last_error: None | str | Unset
        if isinstance(self.last_error, Unset):
            last_error = UNSET
        else:
            last_error = self.last_error

        last_error_at: None | str | Unset
        if isinstance(self.last_error_at, Unset):
            last_error_at = UNSET
        elif isinstance(self.last_error_at, datetime.datetime):
            last_error_at = self.last_error_at.isoformat()
        else:
            last_error_at = self.last_error_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "path": path,
                "kind": kind,
                "status": status,
                "restarts": restarts,
                "queue_depth": queue_depth,
            }
        )
        if tenant is not UNSET:
            field_dict["tenant"] = tenant
        if tenant_slug is not UNSET:
            field_dict["tenant_slug"] = tenant_slug
        if plugin_slug is not UNSET:
            field_dict["plugin_slug"] = plugin_slug
        if started_at is not UNSET:
            field_dict["started_at"] = started_at
        if uptime_s is not UNSET:
            field_dict["uptime_s"] = uptime_s
        if last_error is not UNSET:
            field_dict["last_error"] = last_error
        if last_error_at is not UNSET:
            field_dict["last_error_at"] = last_error_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        path = d.pop("path")

        kind = d.pop("kind")

        status = d.pop("status")

        restarts = d.pop("restarts")

        queue_depth = d.pop("queue_depth")

        def _parse_tenant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        tenant = _parse_tenant(d.pop("tenant", UNSET))

        def _parse_tenant_slug(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        tenant_slug = _parse_tenant_slug(d.pop("tenant_slug", UNSET))

        def _parse_plugin_slug(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        plugin_slug = _parse_plugin_slug(d.pop("plugin_slug", UNSET))

        def _parse_started_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        started_at = _parse_started_at(d.pop("started_at", UNSET))

        def _parse_uptime_s(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        uptime_s = _parse_uptime_s(d.pop("uptime_s", UNSET))

        def _parse_last_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        last_error = _parse_last_error(d.pop("last_error", UNSET))

        def _parse_last_error_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                last_error_at_type_0 = datetime.datetime.fromisoformat(data)

                return last_error_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        last_error_at = _parse_last_error_at(d.pop("last_error_at", UNSET))

        actor_view = cls(
            path=path,
            kind=kind,
            status=status,
            restarts=restarts,
            queue_depth=queue_depth,
            tenant=tenant,
            tenant_slug=tenant_slug,
            plugin_slug=plugin_slug,
            started_at=started_at,
            uptime_s=uptime_s,
            last_error=last_error,
            last_error_at=last_error_at,
        )

        actor_view.additional_properties = d
        return actor_view

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
