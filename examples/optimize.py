#!/usr/bin/env python
"""optimize.py - Optimization with pause/resume support (the guide's command-line script).

    python examples/optimize.py --experiment-name digits --base-config examples/config.yaml
    python examples/optimize.py --resume-session ./experiments/digits/session_<id>
"""

import argparse

from ray import tune

from lightning_bohb import (
    ConfigDrivenOptimizer,
    OptimizationConfig,
    SearchSpace,
    TuneReflowCLI,
    strategy_from_name,
)


class DigitsSearchSpace(SearchSpace):
    VERSION = "1.0.0"

    def get_search_space(self):
        return {
            "lr": tune.loguniform(1e-4, 3e-2),
            "hidden_size": tune.choice([16, 32, 64, 128]),
            "num_layers": tune.choice([1, 2, 3]),
            "batch_size": tune.choice([32, 64, 128]),
        }

    def get_metric_config(self):
        return {"metric": "val_loss", "mode": "min"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment-name", default="digits")
    parser.add_argument("--experiment-dir", default="./experiments")
    parser.add_argument("--base-config", default="examples/config.yaml")
    parser.add_argument("--resume-session", type=str, help="Resume from session")
    parser.add_argument("--strategy", default="bohb", help="bohb, asha, optuna, hyperopt or random")
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--max-concurrent-trials", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.resume_session:
        # Resume from saved session: every setting comes from the session state.
        cli = TuneReflowCLI.resume(session_dir=args.resume_session)
        results = cli.run(resume=True)
    else:
        optimizer = ConfigDrivenOptimizer(
            base_config_source=args.base_config,
            search_space=DigitsSearchSpace(),
            strategy=strategy_from_name(args.strategy),
            optimization_config=OptimizationConfig(
                max_epochs=args.max_epochs,
                num_samples=args.num_samples,
                max_concurrent_trials=args.max_concurrent_trials,
                experiment_name=args.experiment_name,
                experiment_dir=args.experiment_dir,
                seed=args.seed,
            ),
        )
        cli = TuneReflowCLI()  # the experiment location comes from the OptimizationConfig
        results = cli.run(optimizer)

    best = cli.session.optimizer.best_result(results)  # the trial `status`, the dashboard and best_config.yaml name
    if best is not None:
        config = {name: getattr(value, "item", lambda v=value: v)() for name, value in best.config.items()}  # numpy -> Python
        print(f"Best trial: {best.path} config={config}")


if __name__ == "__main__":
    main()
