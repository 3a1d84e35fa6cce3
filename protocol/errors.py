"""The protocol's exceptions: one small tree, split by who is at fault (as in h11).

``LocalProtocolError``: the local caller misused a function or a machine (a bad config, a wrong
length of its own secret, an event in the wrong phase). ``RemoteProtocolError``: data from a peer
or from the chain is wrong (a malformed frame, a share that fails its commitment, a low-order
public key). Callers that drive a state machine catch ``ProtocolError`` and move the machine to a
terminal error state.
"""

from enum import StrEnum


class ProtocolError(Exception):
    """Base of every error the protocol raises on purpose."""


class LocalProtocolError(ProtocolError):
    """The local caller misused a protocol function or machine."""


class RemoteProtocolError(ProtocolError):
    """A peer or the chain sent data that breaks the protocol."""


class ConfigError(LocalProtocolError):
    """A task or quantization configuration that the protocol refuses (e.g. no ring headroom)."""


class EncodingError(LocalProtocolError):
    """Local values that cannot be encoded: non-finite floats, lanes out of range, bad shapes."""


class DecodeReason(StrEnum):
    """Why bytes or words from outside could not be decoded; compares equal to its string."""

    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    UNKNOWN_TYPE = "unknown_type"
    FIELD_SIZE = "field_size"
    FIELD_RANGE = "field_range"
    SCHEMA = "schema"
    WORD_COUNT = "word_count"
    WORD_RANGE = "word_range"
    PADDING = "padding"


class DecodeError(RemoteProtocolError):
    """Bytes from a peer or words from the chain that do not decode; ``.reason`` names why."""

    def __init__(self, reason: DecodeReason, detail: str = "") -> None:
        self.reason = DecodeReason(reason)
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else str(self.reason))


class KeyAgreementError(RemoteProtocolError):
    """A peer's mask public key is malformed or of low order (all-zero shared secret)."""


class CommitmentError(RemoteProtocolError):
    """A share, proof or root does not match what the dealer committed."""


class ShareError(RemoteProtocolError):
    """Shamir shares that cannot be combined: duplicates, wrong sizes, x out of range."""


class RecoveryError(RemoteProtocolError):
    """Chain data from which a group aggregate cannot be recovered consistently."""
