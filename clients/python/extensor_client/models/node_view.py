from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.owned_tenant import OwnedTenant


T = TypeVar("T", bound="NodeView")


@_attrs_define
class NodeView:
    """One node of the cluster.

    Attributes:
        id (str): `node_…`, generated at each start.
        address (str): Where its API listens.
        started_at (datetime.datetime):
        last_heartbeat (datetime.datetime):
        live (bool): Its registration has not expired (by the store's clock).
        this_node (bool): Whether it is the node answering this request.
        tenants_owned (int): How many tenants' leases it holds.
        tenants (list[OwnedTenant]): The tenants it holds, at most 1,000 (by id).
    """

    id: str
    address: str
    started_at: datetime.datetime
    last_heartbeat: datetime.datetime
    live: bool
    this_node: bool
    tenants_owned: int
    tenants: list[OwnedTenant]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        address = self.address

        started_at = self.started_at.isoformat()

        last_heartbeat = self.last_heartbeat.isoformat()

        live = self.live

        this_node = self.this_node

        tenants_owned = self.tenants_owned

        tenants = []
        for tenants_item_data in self.tenants:
            tenants_item = tenants_item_data.to_dict()
            tenants.append(tenants_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "address": address,
                "started_at": started_at,
                "last_heartbeat": last_heartbeat,
                "live": live,
                "this_node": this_node,
                "tenants_owned": tenants_owned,
                "tenants": tenants,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.owned_tenant import OwnedTenant  # noqa: PLC0415

        d = dict(src_dict)
        id = d.pop("id")

        address = d.pop("address")

        started_at = datetime.datetime.fromisoformat(d.pop("started_at"))

        last_heartbeat = datetime.datetime.fromisoformat(d.pop("last_heartbeat"))

        live = d.pop("live")

        this_node = d.pop("this_node")

        tenants_owned = d.pop("tenants_owned")

        tenants = []
        _tenants = d.pop("tenants")
        for tenants_item_data in _tenants:
            tenants_item = OwnedTenant.from_dict(tenants_item_data)

            tenants.append(tenants_item)

        node_view = cls(
            id=id,
            address=address,
            started_at=started_at,
            last_heartbeat=last_heartbeat,
            live=live,
            this_node=this_node,
            tenants_owned=tenants_owned,
            tenants=tenants,
        )

        node_view.additional_properties = d
        return node_view

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
