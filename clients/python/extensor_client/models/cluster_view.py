from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.node_view import NodeView


T = TypeVar("T", bound="ClusterView")


@_attrs_define
class ClusterView:
    """The cluster as this node sees it.

    Attributes:
        node (str): The node answering.
        mode (str): `shared` (several nodes divide tenants by leases in the shared
            store) or `single` (the embedded store: this node owns every tenant).
        nodes (list[NodeView]): Live nodes first, at most 256.
        lease_ttl_ms (int | None | Unset): How long a lease outlives its last renewal (the takeover bound,
            less one heartbeat); absent on a single node.
        heartbeat_interval_ms (int | None | Unset):
    """

    node: str
    mode: str
    nodes: list[NodeView]
    lease_ttl_ms: int | None | Unset = UNSET
    heartbeat_interval_ms: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        node = self.node

        mode = self.mode

        nodes = []
        for nodes_item_data in self.nodes:
            nodes_item = nodes_item_data.to_dict()
            nodes.append(nodes_item)

        lease_ttl_ms: int | None | Unset
        if isinstance(self.lease_ttl_ms, Unset):
            lease_ttl_ms = UNSET
        else:
            lease_ttl_ms = self.lease_ttl_ms

        heartbeat_interval_ms: int | None | Unset
        if isinstance(self.heartbeat_interval_ms, Unset):
            heartbeat_interval_ms = UNSET
        else:
            heartbeat_interval_ms = self.heartbeat_interval_ms

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "node": node,
                "mode": mode,
                "nodes": nodes,
            }
        )
        if lease_ttl_ms is not UNSET:
            field_dict["lease_ttl_ms"] = lease_ttl_ms
        if heartbeat_interval_ms is not UNSET:
            field_dict["heartbeat_interval_ms"] = heartbeat_interval_ms

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.node_view import NodeView  # noqa: PLC0415

        d = dict(src_dict)
        node = d.pop("node")

        mode = d.pop("mode")

        nodes = []
        _nodes = d.pop("nodes")
        for nodes_item_data in _nodes:
            nodes_item = NodeView.from_dict(nodes_item_data)

            nodes.append(nodes_item)

        def _parse_lease_ttl_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        lease_ttl_ms = _parse_lease_ttl_ms(d.pop("lease_ttl_ms", UNSET))

        def _parse_heartbeat_interval_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        heartbeat_interval_ms = _parse_heartbeat_interval_ms(d.pop("heartbeat_interval_ms", UNSET))

        cluster_view = cls(
            node=node,
            mode=mode,
            nodes=nodes,
            lease_ttl_ms=lease_ttl_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )

        cluster_view.additional_properties = d
        return cluster_view

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
