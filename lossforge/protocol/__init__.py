"""The fair comparison protocol: equal tuning budget, repeated seeds, one test evaluation, a verdict.

"A Metric Learning Reality Check" (Musgrave, Belongie, Lim, ECCV 2020) found that most reported gains of
newer losses over older ones vanish once every loss gets the same tuning budget on validation data, the
same model, and repeated runs. `lossforge benchmark` is that protocol as one command:

1. for each loss (or `loss+miner`) in the comparison, an Optuna study with the **same number of trials**
   over the loss's declared search space ([lossforge.contract.search_space][]) and a shared
   learning-rate / weight-decay range, scored on the **validation** split only (the task's
   `TaskSpec.selection_metric`), a median pruner fed each epoch's validation score, and persistent
   storage (`outputs/tuning.db`, SQLite) so a killed comparison resumes where it stopped;
2. the best configuration of each loss retrained with K seeds and evaluated **once** on test;
3. the verdict table ([lossforge.evaluation.statistics][]): per loss mean, CI, and — against a
   baseline — the paired difference, a permutation-test p-value (Holm-corrected) and a verdict.

In MLflow the comparison is one parent run; under it one run per loss's study (its trials as a table
artifact), and under that the loss's seed runs. The verdict table and its plot are logged on the parent.

- [plan][lossforge.protocol.plan] — budgets, entries, the shared optimizer search space;
- [tuning][lossforge.protocol.tuning] — one loss's study: the objective, the pruning callback, the trials table;
- [runner][lossforge.protocol.runner] — the whole protocol and its MLflow run tree;
- [lossforge.protocol.work][lossforge.protocol.work] — the comparison's pieces (trials, seed runs), reserved
  by any number of workers through the study storage;
- [lossforge.protocol.launch][lossforge.protocol.launch] — the workers: this process, local processes
  (`--workers N`) or SLURM jobs (`--launcher slurm`);
- [lossforge.protocol.progress][lossforge.protocol.progress] — a progress bar per entry on a terminal.
"""
