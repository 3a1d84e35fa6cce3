"""Blob transactions on the wire and signing: an EIP-4844 type-3 transaction in the EIP-7594
(Osaka) network wrapper, `rlp([signed tx, 1, blobs, commitments, cell proofs])`, KZG from `ckzg`
(protocol.blobs); and the one signing step type-2 and type-3 transactions share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth_account.signers.local import LocalAccount

from protocol import blobs as blob_kzg


@dataclass(frozen=True, slots=True)
class Sidecar:
    """A blob transaction's blobs with their KZG commitments, cell proofs and versioned hashes."""

    blobs: tuple[bytes, ...]
    commitments: tuple[bytes, ...]
    proofs: tuple[bytes, ...]
    hashes: tuple[bytes, ...]

    @classmethod
    def of(cls, blobs: Sequence[bytes]) -> Sidecar:
        commitments = tuple(blob_kzg.commitment(b) for b in blobs)
        return cls(
            blobs=tuple(bytes(b) for b in blobs),
            commitments=commitments,
            proofs=tuple(p for b in blobs for p in blob_kzg.cell_proofs(b)),
            hashes=tuple(blob_kzg.versioned_hash(c) for c in commitments),
        )

    def wrap(self, signed: bytes) -> bytes:
        """The network form of a signed type-3 transaction (EIP-7594 wrapper version 1)."""
        body = rlp.decode(signed[1:])
        wrapped = [body, 1, list(self.blobs), list(self.commitments), list(self.proofs)]
        return signed[:1] + rlp.encode(wrapped)


def sign(
    account: LocalAccount, fields: Mapping[str, Any], sidecar: Sidecar | None
) -> tuple[bytes, str]:
    """The raw transaction (type 2, or type 3 wrapped with its sidecar) and its hash."""
    signed = account.sign_transaction({**fields, "type": 2 if sidecar is None else 3})
    raw = bytes(signed.raw_transaction)
    return (raw if sidecar is None else sidecar.wrap(raw)), "0x" + bytes(signed.hash).hex()
