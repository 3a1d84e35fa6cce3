"""Flower's side of ``bench.peer``: the demo's job as a Flower app in Flower's simulation engine.

Runs under the separate ``.venv-flower`` interpreter (flwr[simulation] 1.42 with Ray, torch
2.13.0 CPU). Our demo runs the MNIST spec (``examples/mnist-cnn.toml``), whose modules
(``actors.learning.spec_model`` and ``recipe``) need msgspec and safetensors, which Flower's venv
does not have; so from this project it imports the same network and recipe written as code
(``actors.learning.model`` and ``actors.learning.train``: torch and numpy, nothing else). The
tests hold the two equal: the same public vector, layer by layer and in the same order, from the
same seeds (``test_spec_model``), and the same update and private head, bit for bit, from the
same vector, samples and seed (``test_flower_side_trains_as_the_mnist_spec``). The data and the
initial weights come from files that ``bench.peer`` wrote (``.npy`` arrays and the model owner's
round-0 public vector in an ``.npz``), nothing is downloaded.

The job, as our demo runs it: 10 data owners (SuperNodes), all selected every round, each
training the published public model (body + auxiliary head) with the data owners' schedule and
seed (``seed + round``, rounds counted from 0 as ours); the server combines them with FedAvg,
through ``SecAggPlusWorkflow`` (5 shares, threshold 3) or without it (``--plain``); after each
round it does what our model owner does: fine-tune a private head from the aggregated auxiliary
head on its own samples, and evaluate on the test set. Ray runs 2 ClientApps at a time (one CPU
each), each with one torch thread.

    python bench/flower_peer.py DATA_DIR ROUNDS OUT.json [--plain]

OUT.json: ``{"accuracy": [...], "round_seconds": [...], "flwr": version}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the model and recipe modules

import flwr
import numpy as np
import torch
from flwr.client import ClientApp, NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.common import Context, ndarrays_to_parameters
from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.simulation import run_simulation

from actors.learning.data import NUM_CLASSES, Samples
from actors.learning.model import (
    HIDDEN,
    FeatureExtractor,
    PublicModel,
    load_public_vector,
)
from actors.learning.train import (
    DO_SCHEDULE,
    FINETUNE_SCHEDULE,
    evaluate,
    finetune_head,
    train_local,
    use_threads,
)

NUM_SHARES = 5
THRESHOLD = 3
TRAINERS = 2  # ClientApps at a time: one per core, as the demo's trainers


def _samples(data: Path, name: str) -> Samples:
    x = np.load(data / f"{name}_x.npy", allow_pickle=False)
    y = np.load(data / f"{name}_y.npy", allow_pickle=False)
    return Samples(torch.from_numpy(x), torch.from_numpy(y))


def _model(vector: np.ndarray) -> PublicModel:
    model = PublicModel(FeatureExtractor(), torch.nn.Linear(HIDDEN, NUM_CLASSES))
    load_public_vector(model, vector.astype(np.float32))
    return model


class DataOwner(NumPyClient):
    """One data owner: the published vector in, the trained vector out."""

    def __init__(self, data: Samples, seed: int) -> None:
        self.data, self.seed = data, seed

    def fit(self, parameters: list[np.ndarray], config: dict) -> tuple[list, int, dict]:
        (vector,) = parameters
        round = int(config["round"])
        update = train_local(
            _model(vector), self.data, seed=self.seed + round, schedule=DO_SCHEDULE
        )
        return [vector.astype(np.float32) + update], len(self.data), {}


def main(argv: list[str]) -> None:
    data, rounds, out = Path(argv[0]), int(argv[1]), Path(argv[2])
    plain = "--plain" in argv[3:]
    job = json.loads((data / "job.json").read_text())
    with np.load(data / "initial.npz", allow_pickle=False) as initial:
        start = initial["public"]
    accuracy: list[float] = []
    marks = [time.perf_counter()]

    def client_fn(context: Context) -> flwr.client.Client:
        use_threads(1)
        index = int(context.node_config["partition-id"])
        return DataOwner(_samples(data, f"do{index}"), job["do_seeds"][index]).to_client()

    own, test = _samples(data, "mo"), _samples(data, "test")

    def evaluate_fn(server_round: int, parameters: list[np.ndarray], config: dict) -> None:
        if server_round == 0:  # the model owner's own model: ours does not time it either
            return None
        use_threads(1)
        public = _model(parameters[0])
        head = finetune_head(
            public.body, public.aux, own, seed=job["mo_train_seed"], schedule=FINETUNE_SCHEDULE
        )
        accuracy.append(evaluate(public.body, head, test))
        marks.append(time.perf_counter())
        return None

    server = ServerApp()

    @server.main()
    def _(grid: Grid, context: Context) -> None:
        dos = len(job["do_seeds"])
        strategy = FedAvg(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=dos,
            min_available_clients=dos,
            initial_parameters=ndarrays_to_parameters([start]),
            evaluate_fn=evaluate_fn,
            on_fit_config_fn=lambda server_round: {"round": server_round - 1},
        )
        legacy = LegacyContext(
            context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy
        )
        fit = None if plain else SecAggPlusWorkflow(NUM_SHARES, THRESHOLD)
        DefaultWorkflow(fit_workflow=fit)(grid, legacy)

    client = ClientApp(client_fn=client_fn, mods=[] if plain else [secaggplus_mod])
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=len(job["do_seeds"]),
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": TRAINERS, "num_gpus": 0, "include_dashboard": False},
        },
    )
    if len(accuracy) != rounds:
        raise SystemExit(f"Flower finished {len(accuracy)} of {rounds} rounds")
    out.write_text(
        json.dumps(
            {
                "accuracy": accuracy,
                "round_seconds": np.diff(marks).tolist(),
                "flwr": flwr.__version__,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
