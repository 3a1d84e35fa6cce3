# pragma version ~=0.4.3
"""
@title Public models: the digest of each round's model bytes
@notice Owns what a model owner publishes of each round's public model: the running digest of
        its bytes, their chunk count, and (event and blob tasks) the bytes themselves, which
        live only in `ModelChunk` events. A direct task's model owner may publish nothing: its
        model's bytes are served off-chain and checked against the round's model hash.
@dev Digest `m_0 = bytes32(0)`, `m_{n+1} = keccak256(m_n ‖ keccak256(data))`
     (docs/interfaces.md §7; `protocol.commitments.model_digest` mirrors it).
"""

# @dev Largest chunk of public-model bytes per call.
MAX_MODEL_CHUNK: constant(uint256) = 65536

# @dev Running digest of a round's published public-model bytes.
model_digest: public(HashMap[uint256, HashMap[uint256, bytes32]])
# @dev Number of public-model chunks published for a round.
model_chunks: public(HashMap[uint256, HashMap[uint256, uint256]])

# @dev A chunk of a round's public model; its bytes are only in this event.
event ModelChunk:
    task: indexed(uint256)
    round: indexed(uint256)
    index: uint256
    data: Bytes[MAX_MODEL_CHUNK]


@internal
def _publish(task: uint256, round: uint256, data: Bytes[MAX_MODEL_CHUNK]):
    """
    @dev Fold a chunk into the round's model digest; the caller checked who and when.
    """
    assert len(data) > 0, "models: empty model chunk"
    index: uint256 = self.model_chunks[task][round]
    self.model_digest[task][round] = keccak256(concat(self.model_digest[task][round], keccak256(data)))
    self.model_chunks[task][round] = index + 1
    log ModelChunk(task=task, round=round, index=index, data=data)
