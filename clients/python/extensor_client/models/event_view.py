from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="EventView")


@_attrs_define
class EventView:
    """One event as stored, with its place in the log and its hash-chain link.

    Attributes:
        position (int): Global position (from 1, without gaps).
        stream (str):
        revision (int): Revision within the stream (from 0).
        id (str):
        type_ (str):
        schema_version (int):
        recorded_at (datetime.datetime):
        principal (str): Who caused it: `token:tok_…`, `platform-admin`, `plugin:ins_…`, `system`.
        correlation_id (str):
        data (Any): The event's data.
        prev_hash (str): Hex SHA-256 of the previous event's link, and of this one.
        hash_ (str):
        tenant (None | str | Unset):
        causation_id (None | str | Unset):
    """

    position: int
    stream: str
    revision: int
    id: str
    type_: str
    schema_version: int
    recorded_at: datetime.datetime
    principal: str
    correlation_id: str
    data: Any
    prev_hash: str
    hash_: str
    tenant: None | str | Unset = UNSET
    causation_id: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        position = self.position

        stream = self.stream

        revision = self.revision

        id = self.id

        type_ = self.type_

        schema_version = self.schema_version

        recorded_at = self.recorded_at.isoformat()

        principal = self.principal

        correlation_id = self.correlation_id

        data = self.data

        prev_hash = self.prev_hash

        hash_ = self.hash_

        tenant: None | str | Unset
        if isinstance(self.tenant, Unset):
            tenant = UNSET
        else:
            tenant = self.tenant

        causation_id: None | str | Unset
        if isinstance(self.causation_id, Unset):
            causation_id = UNSET
        else:
            causation_id = self.causation_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "position": position,
                "stream": stream,
                "revision": revision,
                "id": id,
                "type": type_,
                "schema_version": schema_version,
                "recorded_at": recorded_at,
                "principal": principal,
                "correlation_id": correlation_id,
                "data": data,
                "prev_hash": prev_hash,
                "hash": hash_,
            }
        )
        if tenant is not UNSET:
            field_dict["tenant"] = tenant
        if causation_id is not UNSET:
            field_dict["causation_id"] = causation_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        position = d.pop("position")

        stream = d.pop("stream")

        revision = d.pop("revision")

        id = d.pop("id")

        type_ = d.pop("type")

        schema_version = d.pop("schema_version")

        recorded_at = datetime.datetime.fromisoformat(d.pop("recorded_at"))

        principal = d.pop("principal")

        correlation_id = d.pop("correlation_id")

        data = d.pop("data")

        prev_hash = d.pop("prev_hash")

        hash_ = d.pop("hash")

        def _parse_tenant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        tenant = _parse_tenant(d.pop("tenant", UNSET))

        def _parse_causation_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        causation_id = _parse_causation_id(d.pop("causation_id", UNSET))

        event_view = cls(
            position=position,
            stream=stream,
            revision=revision,
            id=id,
            type_=type_,
            schema_version=schema_version,
            recorded_at=recorded_at,
            principal=principal,
            correlation_id=correlation_id,
            data=data,
            prev_hash=prev_hash,
            hash_=hash_,
            tenant=tenant,
            causation_id=causation_id,
        )

        event_view.additional_properties = d
        return event_view

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
