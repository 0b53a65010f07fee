"""Benchmark of the demo configuration: runs `experiments.demo` and appends the measured row (metrics, goal
pass/miss, wall time, machine) to experiments/results/demo_gmm_log_ce.csv.

    python -m experiments.bench_demo
"""

from experiments import demo

if __name__ == "__main__":
    demo.main(["--out", "runs/bench_demo", "--record", "experiments/results/demo_gmm_log_ce.csv"])
