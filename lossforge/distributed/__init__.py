"""Data-parallel training (DDP): who starts the processes, what each one sees, and what only rank 0 records.

`trainer=ddp` (every GPU of a machine) and `trainer=ddp_cpu` (2 CPU processes, gloo) train ONE
experiment in `devices × num_nodes` processes. `batch_size` is **per process**: a training step's
global batch has `batch_size × devices × num_nodes` samples, as in Lightning.

- `launch`: how many processes, which one this is, and starting ranks 1 … N−1 (`start_processes`).
- `sharding`: each process's share of every global batch of the training data (`GlobalBatchShard`).
- `collectives`: the loss over the global batch (`global_batch`, `gather`).
- `signals`: a SIGTERM stops every process at the same step (`StopTogetherOnSigterm`).

**Who starts the processes.** Lightning's `strategy="ddp"` starts the extra processes by running the
command line again; under Hydra that re-enters Hydra, so a multirun (`-m` is on that command line) is
relaunched from every extra process, with output directories and MLflow runs of its own. `ddp_spawn`
avoids that but pickles the trainer and its callbacks (an open MLflow client does not pickle), spawns again
for `test`, and what the workers compute (the test predictions behind the plots) stays in them. lossforge
instead keeps the Hydra job as rank 0 and starts ranks 1 … N−1 itself: fresh interpreters that build the
same experiment from the resolved config and train it without tracking. It exports the launch variables
(`MASTER_ADDR`, `RANK`, …), so Lightning treats the processes as launched externally — as under
torchrun or SLURM — and only joins them. Result: one Hydra job, one output directory, one MLflow run
created by rank 0. On SLURM (`srun` starts `devices` tasks per node) or under torchrun the processes
exist already; lossforge starts none, and every rank but 0 trains without recording anything.

**What each process sees.** Training: each process takes its share of every global batch of the epoch's
shuffled order, so together the shares are exactly the batch a single process with `batch_size × world
size` would draw. Validation and test are not sharded: every process evaluates the whole split (forward
only, cheap next to training) and gets the same metrics — no samples padded in twice, retrieval searches
the whole gallery, and nothing needs summing across processes.

**The loss sees the global batch.** Every process computes the loss of the whole global batch from the
gathered outputs and targets — a miner finds hard negatives held by other processes, and a loss whose
value depends on the batch (weighted means, `mean_nonzero`, `sum`) is the single-process loss whatever
its reduction — and backpropagates it into its own samples only (`global_batch` says why the loss is
then multiplied by the world size). The outputs gathered are `(batch, outputs)`: small next to the
parameters DDP all-reduces every step anyway.

**Randomness.** Every process is seeded alike, so all start from the same weights and a miner that samples
(`all_triplets` over its cap) draws the same sample on each — as it must, since each computes the same
loss. Dropout masks are therefore drawn alike on every process too (with dropout, DDP is not bit-for-bit
one process).
"""

from lossforge.distributed.collectives import gather, gather_with_grad, global_batch, is_distributed
from lossforge.distributed.launch import (
    LAUNCH_VARIABLES,
    DistributedConfigError,
    Processes,
    WorkerFailedError,
    check_agrees,
    free_port,
    launched_externally,
    plan_processes,
    start_processes,
)
from lossforge.distributed.sharding import GlobalBatchShard, shard_loader
from lossforge.distributed.signals import StopTogetherOnSigterm

__all__ = [
    "LAUNCH_VARIABLES",
    "DistributedConfigError",
    "GlobalBatchShard",
    "Processes",
    "StopTogetherOnSigterm",
    "WorkerFailedError",
    "check_agrees",
    "free_port",
    "gather",
    "gather_with_grad",
    "global_batch",
    "is_distributed",
    "launched_externally",
    "plan_processes",
    "shard_loader",
    "start_processes",
]
