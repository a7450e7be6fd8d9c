"""lossforge's Optuna sweeper for Hydra (`hydra/sweeper=optuna`), on Optuna ≥ 4 and Optuna's own storage.

It replaces the `hydra-optuna-sweeper` package (whose last release holds Optuna below 3) and keeps its
configuration keys: `direction`, `n_trials`, `n_jobs`, `study_name`, `storage`, `sampler`
(`_target_` one of `optuna.samplers`, with its arguments such as `seed`) and `params` in Hydra's
sweep syntax — `interval(0, 5)`, `tag(log, interval(1e-4, 1e-1))`, `choice(a, b)`, `range(1, 9)`, or
`a,b` — on the command line as well. What it adds:

- **The study lives in a storage** (`storage`, default `outputs/tuning.db` in the directory the command
  started from; a `.log` path or `journal:<path>` is Optuna's journal file, a URL any database), named
  `study_name` or, by default, after the command's overrides: the same command again resumes it.
- **The budget is exact**: the study ends with `n_trials` complete, pruned and failed trials, counted in
  the storage; a trial a killed search left running is marked failed and interrupted, and run again.
- **The median pruner is fed by the jobs themselves** (`pruner`; `null` turns it off): each job finds
  its trial in the overrides the sweeper adds (`+tuning_trial.*`, `lossforge.training.pruning`), reports
  every epoch's `optimized_metric` to the storage and stops early when pruned.
- **Any launcher runs the trials**: `launcher.launch` gets batches of `n_jobs` trials, so
  `hydra/launcher=parallel` (or submitit on SLURM, sharing a database or journal storage) runs a batch
  at once.

The value optimized is what the task function returns (`optimized_metric` of the job's metrics); a job
that fails or returns no finite value is a failed trial. Hydra imports this module whenever it scans for
plugins, so Optuna and lossforge's training stack are imported only when a sweep starts.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan executes this module without entering it in
# sys.modules, and a dataclass with string annotations looks its module up there (AttributeError on None).
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("lossforge.tuning")


@dataclass
class SamplerConf:
    """One of `optuna.samplers` (TPE by default) and its keyword arguments (`seed`, …)."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None


@dataclass
class PrunerConf:
    """The median pruner: a trial below the median of earlier trials at the same epoch stops, once
    `n_startup_trials` trials finished and after `n_warmup_steps` epochs."""

    n_startup_trials: int = 2
    n_warmup_steps: int = 1


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.lossforge_optuna.optuna_sweeper.OptunaSweeper"
    _recursive_: bool = False  # the sampler is built by the sweeper, its seed moved on when a study resumes
    direction: str = "minimize"  # or "maximize"
    n_trials: int = 20  # complete + pruned + failed trials in the study, however often the search is resumed
    n_jobs: int = 1  # trials launched together (a batch for the launcher): >1 with hydra/launcher=parallel
    study_name: str | None = None  # default: derived from the command's overrides
    storage: str | None = None  # default: outputs/tuning.db (SQLite); *.log or journal:PATH; a database URL
    sampler: SamplerConf = field(default_factory=SamplerConf)
    pruner: PrunerConf | None = field(default_factory=PrunerConf)
    params: dict[str, str] | None = None  # config key → search space in Hydra's sweep syntax


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="lossforge")


def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override (`key=interval(…)`, `choice(…)`, `range(…)`, `a,b`)."""
    import optuna.distributions as d
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    value: Any = override.value()
    log_scale = "log" in getattr(value, "tags", set())
    if isinstance(value, IntervalSweep):
        return d.FloatDistribution(cast(float, value.start), cast(float, value.end), log=log_scale)
    if isinstance(value, RangeSweep):  # range(start, stop, step): stop excluded, as Python's range
        start, stop, step = cast(float, value.start), cast(float, value.stop), cast(float, value.step)
        last = math.ceil((stop - start) / step) - 1  # the index of the last value before stop
        if all(isinstance(bound, int) for bound in (start, stop, step)):
            return d.IntDistribution(int(start), int(start + last * step), step=int(step), log=log_scale)
        return d.FloatDistribution(float(start), float(start + last * step), step=float(step))
    if isinstance(value, ChoiceSweep):
        choices: list[Any] = list(override.sweep_iterator(transformer=Transformer.encode))
        return d.CategoricalDistribution(choices)
    raise ValueError(
        f"hydra/sweeper=optuna: cannot search {override.input_line!r}; use interval(low, high), "
        f"tag(log, interval(low, high)), range(start, stop[, step]), choice(a, b, …) or a,b"
    )


def quoted(text: str) -> str:
    """`text` as a quoted Hydra override value (a path or URL with any characters)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class OptunaSweeper(Sweeper):
    """Ask Optuna for `n_jobs` trials at a time, launch them as jobs, tell it their results (see the module)."""

    def __init__(
        self,
        direction: str = "minimize",
        n_trials: int = 20,
        n_jobs: int = 1,
        study_name: str | None = None,
        storage: str | None = None,
        sampler: DictConfig | None = None,
        pruner: DictConfig | None = None,
        params: DictConfig | None = None,
    ) -> None:
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"hydra.sweeper.direction: expected minimize or maximize, got {direction!r}")
        if n_trials < 1 or n_jobs < 1:
            raise ValueError(f"hydra.sweeper: expected n_trials >= 1 and n_jobs >= 1, got {n_trials} and {n_jobs}")
        self.direction, self.n_trials, self.n_jobs = direction, n_trials, n_jobs
        self.study_name, self.storage = study_name, storage
        # `_recursive_: false` (OptunaSweeperConf): the sampler node comes as config, built here (_sampler).
        self.sampler: dict[str, Any] = dict(OmegaConf.to_container(sampler)) if sampler is not None else {}  # type: ignore[arg-type]
        self.pruner: dict[str, Any] | None = dict(OmegaConf.to_container(pruner)) if pruner is not None else None  # type: ignore[arg-type]
        self.params = {str(key): str(value) for key, value in (params or {}).items()}
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _sampler(self, done: int) -> Any:
        """The configured sampler for a study with `done` trials (its seed moved on by that many)."""
        import optuna

        from lossforge.protocol.studies import seeded

        arguments = {key: value for key, value in self.sampler.items() if key != "_target_"}
        if "seed" in arguments:
            arguments["seed"] = seeded(arguments["seed"], done)
        target = str(self.sampler.get("_target_", "optuna.samplers.TPESampler"))
        name = target.removeprefix("optuna.samplers.")
        sampler_class = getattr(optuna.samplers, name, None) if target.startswith("optuna.samplers.") else None
        if sampler_class is None:
            known = ", ".join(f"optuna.samplers.{n}" for n in optuna.samplers.__all__ if n.endswith("Sampler"))
            raise ValueError(f"hydra.sweeper.sampler._target_: expected one of {known}; got {target!r}")
        return sampler_class(**arguments)

    def search_space(self, arguments: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
        """The command's fixed overrides, and the search space: `params`, then the command's sweeps."""
        parser = OverridesParser.create()
        configured = parser.parse_overrides([f"{key}={value}" for key, value in self.params.items()])
        space = {override.get_key_element(): distribution(override) for override in configured}
        fixed: list[str] = []
        for override in parser.parse_overrides(list(arguments)):
            if override.is_sweep_override():
                space[override.get_key_element()] = distribution(override)
            else:
                fixed.append(str(override.input_line))
        return fixed, space

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        from lossforge.protocol.studies import open_study, prepare_storage
        from lossforge.protocol.trials import remaining_trials
        from lossforge.training.pruning import TRIAL_KEY, median_pruner, storage_url

        assert self.config is not None and self.launcher is not None, "setup() comes first"
        monitor = self.config.get("optimized_metric")
        if not monitor:
            raise ValueError("hydra/sweeper=optuna optimizes the task's `optimized_metric`: set it (e.g. val/mae)")
        fixed, space = self.search_space(arguments)
        if not space:
            raise ValueError("hydra/sweeper=optuna: nothing to search; give hydra.sweeper.params or key=interval(…)")
        base_dir = Path(self.config.hydra.runtime.cwd)
        storage = prepare_storage(storage_url(self.storage or "outputs/tuning.db", base_dir=base_dir))
        study_name = self.study_name or "sweep " + " ".join(sorted(fixed))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        pruner = self.pruner
        study = open_study(
            storage=storage,
            study_name=study_name,
            maximize=self.direction == "maximize",
            search={key: repr(value) for key, value in space.items()},
            sampler=self._sampler,
            pruner=median_pruner(**pruner) if pruner is not None else optuna.pruners.NopPruner(),
        )
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        remaining = remaining_trials(study, self.n_trials, label=f"study {study_name!r}")
        log.info("optuna   study %r in %s: %d trial(s) to run", study_name, storage, remaining)
        while remaining > 0:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, remaining))]
            batch = []
            for trial in trials:
                where = {"storage": quoted(storage), "study": quoted(study_name), "trial_id": trial._trial_id,
                         "monitor": quoted(monitor), "prune": pruner is not None, **(pruner or {})}  # fmt: skip
                batch.append(
                    [
                        *fixed,
                        *(f"{key}={value}" for key, value in trial.params.items()),
                        *(f"+{TRIAL_KEY}.{key}={value}" for key, value in where.items()),
                    ]
                )
            self.validate_batch_is_legal(batch)
            returns = self.launcher.launch(batch, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            for trial, returned in zip(trials, returns, strict=True):
                self._tell(study, trial, returned)
            remaining -= len(trials)
        self._write_results(study, sweep_dir)

    def _tell(self, study: Any, trial: Any, returned: Any) -> None:
        import optuna

        try:
            value = returned.return_value  # re-raises the job's exception
            error = None if value is not None and math.isfinite(float(value)) else f"the job returned {value}"
        except Exception as exception:  # recorded; the search goes on
            value, error = None, f"{type(exception).__name__}: {exception}"
        if error is None:
            study.tell(trial, float(value), skip_if_finished=True)  # a pruned job already told its state
            return
        if study.get_trials(deepcopy=False)[trial.number].state.is_finished():
            return
        trial.set_user_attr("error", error[:2000])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        log.warning("optuna   trial %d failed: %s", trial.number, error)

    def _write_results(self, study: Any, sweep_dir: Path) -> None:
        import optuna

        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        results: dict[str, Any] = {"name": "optuna", "study_name": study.study_name}
        if complete:
            best = study.best_trial
            results.update(best_params=dict(best.params), best_value=best.value, best_trial=best.number)
            log.info("optuna   best %s (trial %d): %s", best.value, best.number, best.params)
        else:
            log.warning("optuna   no trial of study %r completed", study.study_name)
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
