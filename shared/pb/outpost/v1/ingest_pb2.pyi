from shared.pb.outpost.v1 import batch_pb2 as _batch_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PushRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _batch_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_batch_pb2.Envelope, _Mapping]] = ...) -> None: ...

class PartialSuccess(_message.Message):
    __slots__ = ("rejected_points", "error_message")
    REJECTED_POINTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    rejected_points: int
    error_message: str
    def __init__(self, rejected_points: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("accepted_points", "rejected_points", "partial_success", "retry_after_ms", "duplicate")
    ACCEPTED_POINTS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_POINTS_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    accepted_points: int
    rejected_points: int
    partial_success: PartialSuccess
    retry_after_ms: int
    duplicate: bool
    def __init__(self, accepted_points: _Optional[int] = ..., rejected_points: _Optional[int] = ..., partial_success: _Optional[_Union[PartialSuccess, _Mapping]] = ..., retry_after_ms: _Optional[int] = ..., duplicate: _Optional[bool] = ...) -> None: ...
