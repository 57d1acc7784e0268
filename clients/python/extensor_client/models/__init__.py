"""Contains all the data models used in inputs/outputs"""

from .actor_view import ActorView
from .aggregate_kind import AggregateKind
from .aggregate_state import AggregateState
from .apply_filters import ApplyFilters
from .apply_result import ApplyResult
from .attempt_view import AttemptView
from .chain_break_view import ChainBreakView
from .chain_result_view import ChainResultView
from .chain_step_view import ChainStepView
from .change_name import ChangeName
from .cluster_view import ClusterView
from .create_tenant import CreateTenant
from .create_token import CreateToken
from .created_tenant import CreatedTenant
from .delivery_created import DeliveryCreated
from .delivery_page import DeliveryPage
from .delivery_status_name import DeliveryStatusName
from .delivery_view import DeliveryView
from .event_order import EventOrder
from .event_page import EventPage
from .event_view import EventView
from .extensibility import Extensibility
from .features import Features
from .field_error import FieldError
from .health import Health
from .hook_run_view import HookRunView
from .issued_token_view import IssuedTokenView
from .job_list import JobList
from .job_view import JobView
from .last_run_view import LastRunView
from .log_line import LogLine
from .node_view import NodeView
from .on_failure import OnFailure
from .outbox_message_view import OutboxMessageView
from .outbox_page import OutboxPage
from .outbox_status_name import OutboxStatusName
from .owned_tenant import OwnedTenant
from .plugin_list import PluginList
from .plugin_logs import PluginLogs
from .plugin_metrics_list import PluginMetricsList
from .plugin_metrics_view import PluginMetricsView
from .plugin_view import PluginView
from .problem import Problem
from .publish_event import PublishEvent
from .replay_request import ReplayRequest
from .replay_result import ReplayResult
from .role_name import RoleName
from .run_counts import RunCounts
from .run_generator_hooks import RunGeneratorHooks
from .run_log_view import RunLogView
from .run_now_view import RunNowView
from .run_page_view import RunPageView
from .run_status_name import RunStatusName
from .run_view import RunView
from .sandbox_info import SandboxInfo
from .secret_key_list import SecretKeyList
from .secret_key_view import SecretKeyView
from .secret_value import SecretValue
from .session_view import SessionView
from .set_secret import SetSecret
from .status import Status
from .status_scope_view import StatusScopeView
from .step_status_view import StepStatusView
from .stream_events_response_200 import StreamEventsResponse200
from .stream_events_response_200_event import StreamEventsResponse200Event
from .stream_ops_tree_response_200 import StreamOpsTreeResponse200
from .stream_ops_tree_response_200_event import StreamOpsTreeResponse200Event
from .stream_plugin_logs_response_200 import StreamPluginLogsResponse200
from .stream_plugin_logs_response_200_event import StreamPluginLogsResponse200Event
from .suspend_tenant import SuspendTenant
from .tenant_list import TenantList
from .tenant_view import TenantView
from .test_event import TestEvent
from .test_event_result import TestEventResult
from .token_list import TokenList
from .token_view import TokenView
from .tree_view import TreeView
from .truncated_result_view import TruncatedResultView
from .upload_action_view import UploadActionView
from .upload_plugin_body import UploadPluginBody
from .upload_result import UploadResult
from .verify_report_view import VerifyReportView
from .version_view import VersionView
from .webhook_json import WebhookJson
from .webhook_json_files import WebhookJsonFiles
from .webhook_list import WebhookList
from .webhook_stats_view import WebhookStatsView
from .webhook_status_name import WebhookStatusName
from .webhook_summary import WebhookSummary
from .webhook_view import WebhookView
from .webhook_view_sources import WebhookViewSources

__all__ = (
    "ActorView",
    "AggregateKind",
    "AggregateState",
    "ApplyFilters",
    "ApplyResult",
    "AttemptView",
    "ChainBreakView",
    "ChainResultView",
    "ChainStepView",
    "ChangeName",
    "ClusterView",
    "CreatedTenant",
    "CreateTenant",
    "CreateToken",
    "DeliveryCreated",
    "DeliveryPage",
    "DeliveryStatusName",
    "DeliveryView",
    "EventOrder",
    "EventPage",
    "EventView",
    "Extensibility",
    "Features",
    "FieldError",
    "Health",
    "HookRunView",
    "IssuedTokenView",
    "JobList",
    "JobView",
    "LastRunView",
    "LogLine",
    "NodeView",
    "OnFailure",
    "OutboxMessageView",
    "OutboxPage",
    "OutboxStatusName",
    "OwnedTenant",
    "PluginList",
    "PluginLogs",
    "PluginMetricsList",
    "PluginMetricsView",
    "PluginView",
    "Problem",
    "PublishEvent",
    "ReplayRequest",
    "ReplayResult",
    "RoleName",
    "RunCounts",
    "RunGeneratorHooks",
    "RunLogView",
    "RunNowView",
    "RunPageView",
    "RunStatusName",
    "RunView",
    "SandboxInfo",
    "SecretKeyList",
    "SecretKeyView",
    "SecretValue",
    "SessionView",
    "SetSecret",
    "Status",
    "StatusScopeView",
    "StepStatusView",
    "StreamEventsResponse200",
    "StreamEventsResponse200Event",
    "StreamOpsTreeResponse200",
    "StreamOpsTreeResponse200Event",
    "StreamPluginLogsResponse200",
    "StreamPluginLogsResponse200Event",
    "SuspendTenant",
    "TenantList",
    "TenantView",
    "TestEvent",
    "TestEventResult",
    "TokenList",
    "TokenView",
    "TreeView",
    "TruncatedResultView",
    "UploadActionView",
    "UploadPluginBody",
    "UploadResult",
    "VerifyReportView",
    "VersionView",
    "WebhookJson",
    "WebhookJsonFiles",
    "WebhookList",
    "WebhookStatsView",
    "WebhookStatusName",
    "WebhookSummary",
    "WebhookView",
    "WebhookViewSources",
)
