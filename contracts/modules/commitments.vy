# pragma version ~=0.4.3
"""
@title Commitments: Shamir share roots
@notice Owns what data owners commit to before they may rely on it: each data owner's round
        mask public key, the Merkle root over the shares it dealt to its group and its Pedersen
        commitments to the two sharing polynomials (the public model's digests are
        `models`'). The shares court (contracts/SharesCourt.vy) checks revealed and
        answered shares against them with `_root`.
@dev Byte formats are fixed in docs/interfaces.md §4 (leaves, sorted-pair tree).
"""

# @dev Longest proof: a group of `MAX_GROUP` members has 128 leaves, a tree of depth 7.
MAX_PROOF: constant(uint256) = 8
# @dev Secret kind of the self-mask seed `b_i`.
KIND_SELF_SEED: constant(uint256) = 0
# @dev Secret kind of the round's X25519 mask secret key.
KIND_MASK_KEY: constant(uint256) = 1
# @dev Most bytes of one dealer's Pedersen commitments: 2 polynomials of up to 32 points
#      (t <= m <= 32) of 64 bytes.
MAX_POINT_BYTES: constant(uint256) = 2 * 32 * 64


# @dev One revealed share with its blinding share, its proof against the dealer's root, and the
#      dealer's commitments (docs/interfaces.md §5).
struct Reveal:
    dealer: address
    kind: uint256
    share: bytes32
    blind: bytes32
    proof: DynArray[bytes32, MAX_PROOF]
    points: Bytes[MAX_POINT_BYTES]


# @dev A data owner's X25519 mask public key for a round.
mask_pk: public(HashMap[uint256, HashMap[uint256, HashMap[address, bytes32]]])
# @dev Merkle root over the shares a data owner dealt in a round.
shares_root: public(HashMap[uint256, HashMap[uint256, HashMap[address, bytes32]]])
# @dev keccak256 of the Pedersen commitments a data owner posted in a round.
points_digest: public(HashMap[uint256, HashMap[uint256, HashMap[address, bytes32]]])

# @dev A data owner committed to its round mask key and the shares it dealt.
event SharesCommitted:
    task: indexed(uint256)
    round: indexed(uint256)
    do: indexed(address)
    group: uint256
    mask_pk: bytes32
    shares_root: bytes32
    points: Bytes[MAX_POINT_BYTES]


@internal
def _commit(task: uint256, round: uint256, do: address, group: uint256, mask_pk: bytes32, shares_root: bytes32, points: Bytes[MAX_POINT_BYTES], threshold: uint256):
    """
    @dev Record a data owner's commitments; the caller checked phase, membership and duplicates.
         The points are checked against shares when one is revealed or answered (SharesCourt).
    """
    assert mask_pk != empty(bytes32), "commitments: empty mask key"
    assert shares_root != empty(bytes32), "commitments: empty shares root"
    assert len(points) == 128 * threshold, "commitments: wrong point count"
    self.mask_pk[task][round][do] = mask_pk
    self.shares_root[task][round][do] = shares_root
    self.points_digest[task][round][do] = keccak256(points)
    log SharesCommitted(task=task, round=round, do=do, group=group, mask_pk=mask_pk, shares_root=shares_root, points=points)


@pure
@internal
def _root(task: uint256, round: uint256, dealer: address, holder: address, kind: uint256, share: bytes32, blind: bytes32, proof: DynArray[bytes32, MAX_PROOF]) -> bytes32:
    """
    @dev The root a share's leaf (share and blinding share) proves up to through the sorted-pair
         tree.
    """
    node: bytes32 = keccak256(abi_encode(task, round, dealer, holder, kind, share, blind))
    for sibling: bytes32 in proof:
        if convert(node, uint256) < convert(sibling, uint256):
            node = keccak256(concat(node, sibling))
        else:
            node = keccak256(concat(sibling, node))
    return node
