# pragma version ~=0.4.3
"""
@title Registry of data owners and their groups
@notice Owns who takes part in a task: each data owner's channel public key (the static key of
        its peer-channel handshakes) and endpoint, the registration order, and the groups fixed
        from chain randomness when registration closes.
@dev Groups: the member list is shuffled by Fisher–Yates with `j_i = keccak256(abi_encode(seed,
     i)) % (i + 1)` for `i = n-1 .. 1`, where `seed = keccak256(abi_encode(blockhash(draw_block),
     task))` and `draw_block` is the block whose transaction closed registration: no transaction
     can read its own block's hash, so none can both close registration and see the draw. The
     shuffled list is cut into `G = n // m` consecutive groups, the first `n % G` of them one
     member larger. A member's position is its index in its group's list.
"""

# @dev Most data owners one task accepts.
MAX_DOS: constant(uint256) = 256
# @dev Largest group size `m` a task may ask for.
MAX_GROUP_SIZE: constant(uint256) = 32
# @dev Largest actual group: balanced groups of `n // m` reach `2m - 1` members.
MAX_GROUP: constant(uint256) = 64
# @dev Most groups one task can have (`m >= 2`).
MAX_GROUPS: constant(uint256) = 128
# @dev Longest endpoint string (e.g. "203.0.113.7:40123" or a DNS name and port).
MAX_ENDPOINT: constant(uint256) = 128

# @dev Every registered data owner of a task, in registration order.
_members: HashMap[uint256, DynArray[address, MAX_DOS]]
# @dev Static public key of a data owner's authenticated peer channel (never zero once registered).
channel_key: public(HashMap[uint256, HashMap[address, bytes32]])
# @dev Where a data owner's peer channel listens.
endpoint: public(HashMap[uint256, HashMap[address, String[MAX_ENDPOINT]]])
# @dev Number of groups of a task, zero until registration closes.
group_count: public(HashMap[uint256, uint256])
# @dev Group index of a data owner (meaningful once `group_count` is non-zero).
group_of: public(HashMap[uint256, HashMap[address, uint256]])
# @dev Member list of each group, in shuffled order.
_group_members: HashMap[uint256, HashMap[uint256, DynArray[address, MAX_GROUP]]]
# @dev Seed the groups were drawn from.
group_seed: public(HashMap[uint256, bytes32])
# @dev Block whose hash draws a task's groups (set when registration closes; moved to a later
#      block if the draw comes more than 256 blocks after it, when its hash is out of reach).
draw_block: public(HashMap[uint256, uint256])

# @dev A data owner joined a task.
event Registered:
    task: indexed(uint256)
    do: indexed(address)
    channel_pk: bytes32
    endpoint: String[MAX_ENDPOINT]

# @dev Registration closed with enough data owners and their groups were drawn.
event GroupsFixed:
    task: indexed(uint256)
    seed: bytes32
    members: uint256
    groups: uint256


@view
@external
def members(task: uint256) -> DynArray[address, MAX_DOS]:
    """
    @notice Every registered data owner of `task`, in registration order.
    """
    return self._members[task]


@view
@external
def member_count(task: uint256) -> uint256:
    """
    @notice Number of registered data owners of `task`.
    """
    return len(self._members[task])


@view
@external
def is_registered(task: uint256, do: address) -> bool:
    """
    @notice Whether `do` registered for `task`.
    """
    return self.channel_key[task][do] != empty(bytes32)


@view
@external
def group_members(task: uint256, group: uint256) -> DynArray[address, MAX_GROUP]:
    """
    @notice Member list of a group; a member's Shamir x-coordinate is its index plus one.
    """
    return self._group_members[task][group]


@view
@external
def position_of(task: uint256, do: address) -> uint256:
    """
    @notice Position of a member in its group's list.
    @dev Reverts for an address that is not in a group.
    """
    return self._position(task, do)


@view
@internal
def _position(task: uint256, do: address) -> uint256:
    assert self.group_count[task] > 0 and self.channel_key[task][do] != empty(bytes32), "registry: not a member"
    members: DynArray[address, MAX_GROUP] = self._group_members[task][self.group_of[task][do]]
    for p: uint256 in range(len(members), bound=MAX_GROUP):
        if members[p] == do:
            return p
    raise "registry: not a member"


@internal
def _register(task: uint256, do: address, channel_pk: bytes32, endpoint: String[MAX_ENDPOINT], max_dos: uint256):
    """
    @dev Add a data owner; the caller has checked the phase and the deadline.
    """
    assert channel_pk != empty(bytes32), "registry: empty channel key"
    assert len(endpoint) > 0, "registry: empty endpoint"
    assert self.channel_key[task][do] == empty(bytes32), "registry: already registered"
    assert len(self._members[task]) < max_dos, "registry: task full"
    self._members[task].append(do)
    self.channel_key[task][do] = channel_pk
    self.endpoint[task][do] = endpoint
    log Registered(task=task, do=do, channel_pk=channel_pk, endpoint=endpoint)


@view
@internal
def _count(task: uint256) -> uint256:
    return len(self._members[task])


@view
@internal
def _is_member(task: uint256, do: address) -> bool:
    return self.channel_key[task][do] != empty(bytes32)


@view
@internal
def _group(task: uint256, group: uint256) -> DynArray[address, MAX_GROUP]:
    return self._group_members[task][group]


@internal
def _fix_groups(task: uint256, group_size: uint256, seed: bytes32) -> uint256:
    """
    @dev Shuffle the members with `seed` and cut them into balanced groups.
         The caller guarantees `len(members) >= group_size >= 2`.
    @return The number of groups.
    """
    order: DynArray[address, MAX_DOS] = self._members[task]
    n: uint256 = len(order)
    for k: uint256 in range(n - 1, bound=MAX_DOS):
        # @dev i runs n-1 .. 1; k < n - 1 so this cannot underflow
        i: uint256 = unsafe_sub(n - 1, k)
        j: uint256 = convert(keccak256(abi_encode(seed, i)), uint256) % (i + 1)
        moved: address = order[i]
        order[i] = order[j]
        order[j] = moved
    groups: uint256 = n // group_size
    base: uint256 = n // groups
    larger: uint256 = n % groups
    pos: uint256 = 0
    for g: uint256 in range(groups, bound=MAX_GROUPS):
        size: uint256 = base
        if g < larger:
            size += 1
        for _: uint256 in range(size, bound=MAX_GROUP):
            member: address = order[pos]
            self._group_members[task][g].append(member)
            self.group_of[task][member] = g
            pos += 1
    self.group_count[task] = groups
    self.group_seed[task] = seed
    log GroupsFixed(task=task, seed=seed, members=n, groups=groups)
    return groups
