"""The headline figures of each benchmark, appended as tab-separated lines to $BENCH_SUMMARY
(figure, value, unit, baseline, ratio, goal) so that bench/run-all.sh can print one table."""
import os


def summary(figure, value, unit, baseline="", ratio="", goal=""):
    path = os.environ.get("BENCH_SUMMARY")
    if path:
        with open(path, "a") as f:
            f.write("\t".join(str(x) for x in (figure, value, unit, baseline, ratio, goal)) + "\n")
