"""Flower's side of ``bench.mask``: one SecAgg+ client's round of work, with Flower's primitives.

Runs under the separate ``.venv-flower`` interpreter (flwr pins older rich/typer than ours), so it
imports nothing from this project. It follows the steps of ``flwr.client.mod.secure_aggregation.
secaggplus_mod`` (``_setup``, ``_share_keys``, ``_collect_masked_vectors``) for the work that
``bench.mask`` also measures on our side: the pairwise-mask key pair, the self-mask seed, Shamir
shares of both secrets, quantization, the self mask and one key agreement plus mask per peer.
Left out on both sides: the channel encryption of shares (Flower's second key pair and Fernet;
our Noise channels) and serialization of the masked vector.

Protocol on stdin/stdout (one line each): ``run`` -> a JSON object of phase timings in seconds;
``quit`` -> exit. Interleaving runs with ours keeps machine load from favouring either side.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from flwr.common.secure_aggregation.crypto.shamir import create_shares
from flwr.common.secure_aggregation.crypto.symmetric_encryption import generate_shared_key
from flwr.common.secure_aggregation.ndarrays_arithmetic import (
    factor_combine,
    parameters_addition,
    parameters_mod,
    parameters_multiply,
    parameters_subtraction,
)
from flwr.common.secure_aggregation.quantization import quantize
from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen
from flwr.supercore.primitives.asymmetric import (
    bytes_to_private_key,
    bytes_to_public_key,
    generate_key_pairs,
    private_key_to_bytes,
    public_key_to_bytes,
)

# SecAggPlusWorkflow's defaults.
CLIPPING_RANGE = 8.0
QUANTIZATION_RANGE = 4194304
MODULUS_RANGE = 4294967296
MAX_WEIGHT = 1000.0


def client_round(
    update: np.ndarray, peers: dict[int, bytes], me: int, threshold: int, num_examples: int
) -> dict[str, float]:
    """One client's round; returns seconds per phase (same phase names as bench.mask)."""
    t0 = time.perf_counter()
    sk1, pk1 = generate_key_pairs()
    sk1_bytes, _ = private_key_to_bytes(sk1), public_key_to_bytes(pk1)
    rd_seed = os.urandom(32)
    share_num = len(peers) + 1
    create_shares(rd_seed, threshold, share_num)
    create_shares(sk1_bytes, threshold, share_num)
    t1 = time.perf_counter()

    q_ratio = round(num_examples / MAX_WEIGHT * QUANTIZATION_RANGE)
    params = parameters_multiply([update], q_ratio / QUANTIZATION_RANGE)
    quantized = quantize(params, CLIPPING_RANGE, QUANTIZATION_RANGE)
    quantized = factor_combine(q_ratio, quantized)
    t2 = time.perf_counter()

    dims = [a.shape for a in quantized]
    quantized = parameters_addition(quantized, pseudo_rand_gen(rd_seed, MODULUS_RANGE, dims))
    for node_id, pk_bytes in peers.items():
        shared_key = generate_shared_key(
            bytes_to_private_key(sk1_bytes), bytes_to_public_key(pk_bytes)
        )
        mask = pseudo_rand_gen(shared_key, MODULUS_RANGE, dims)
        if me > node_id:
            quantized = parameters_addition(quantized, mask)
        else:
            quantized = parameters_subtraction(quantized, mask)
    masked = parameters_mod(quantized, MODULUS_RANGE)
    t3 = time.perf_counter()
    assert masked[1].shape == update.shape
    return {"keys_and_shares": t1 - t0, "quantize": t2 - t1, "masks": t3 - t2, "total": t3 - t0}


def main() -> None:
    d, n_peers, threshold, seed = (int(a) for a in sys.argv[1:5])
    update = np.random.default_rng(seed).normal(scale=0.01, size=d).astype(np.float32)
    peers = {node: public_key_to_bytes(generate_key_pairs()[1]) for node in range(1, n_peers + 1)}
    me = n_peers // 2 + 1  # a middle node id, so both signs of pairwise masks occur
    peers.pop(me)
    peers[n_peers + 1] = public_key_to_bytes(generate_key_pairs()[1])
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        timings = client_round(update, peers, me, threshold, num_examples=100)
        print(json.dumps(timings), flush=True)


if __name__ == "__main__":
    main()
